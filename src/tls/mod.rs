//! TLS for the HTTPS listeners: certificates from PEM files, chosen by SNI, reloaded on SIGHUP.
