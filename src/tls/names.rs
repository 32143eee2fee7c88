//! The DNS names a leaf certificate is valid for, read from its subjectAltName extension.
//!
//! rustls and webpki check names but do not list them, and a full X.509 parser would be a new
//! dependency for one field, so this is a small DER walker that reads exactly the path
//! `Certificate → tbsCertificate → [3] extensions → subjectAltName → dNSName*` and nothing else.
//! The subject's common name is deliberately ignored, as browsers have done for years: a
//! certificate is chosen by SNI only for the names in its subjectAltName.
//!
//! Names come back lower-cased with any trailing dot removed; wildcards keep their `*.` prefix.

/// Why a certificate's names could not be read; becomes part of a [`super::TlsError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MalformedCert(pub &'static str);

/// DER tag of a SEQUENCE.
const SEQUENCE: u8 = 0x30;
/// DER tag of an OBJECT IDENTIFIER.
const OID: u8 = 0x06;
/// DER tag of an OCTET STRING.
const OCTET_STRING: u8 = 0x04;
/// Context tag `[3]` (constructed, explicit) that wraps the extensions in a tbsCertificate.
const EXTENSIONS: u8 = 0xa3;
/// Context tag `[2]` (primitive, implicit) of a dNSName inside GeneralNames.
const DNS_NAME: u8 = 0x82;
/// The OID 2.5.29.17 (id-ce-subjectAltName), content bytes only.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Returns the DNS names (exact and `*.` wildcard) from the certificate's subjectAltName.
///
/// A certificate without the extension, or with only IP/e-mail/URI entries, yields an empty list.
pub(crate) fn dns_names(cert_der: &[u8]) -> Result<Vec<String>, MalformedCert> {
    let mut outer = Reader::new(cert_der);
    let cert = outer.expect(SEQUENCE, "certificate is not a DER SEQUENCE")?;
    let tbs = Reader::new(cert).expect(SEQUENCE, "tbsCertificate is not a SEQUENCE")?;

    let mut fields = Reader::new(tbs);
    let mut names = Vec::new();
    while !fields.is_empty() {
        let (tag, value) = fields.next_tlv()?;
        if tag != EXTENSIONS {
            continue;
        }
        let list = Reader::new(value).expect(SEQUENCE, "extensions are not a SEQUENCE")?;
        let mut extensions = Reader::new(list);
        while !extensions.is_empty() {
            let ext = extensions.expect(SEQUENCE, "extension is not a SEQUENCE")?;
            let mut ext = Reader::new(ext);
            if ext.expect(OID, "extension has no OID")? != SUBJECT_ALT_NAME {
                continue;
            }
            // `critical BOOLEAN DEFAULT FALSE` may come before the value.
            let mut value = None;
            while !ext.is_empty() {
                let (tag, bytes) = ext.next_tlv()?;
                if tag == OCTET_STRING {
                    value = Some(bytes);
                }
            }
            let value = value.ok_or(MalformedCert("subjectAltName has no value"))?;
            read_general_names(value, &mut names)?;
        }
    }
    Ok(names)
}

/// Appends the dNSName entries of a DER `GeneralNames` to `names`.
fn read_general_names(der: &[u8], names: &mut Vec<String>) -> Result<(), MalformedCert> {
    let seq = Reader::new(der).expect(SEQUENCE, "subjectAltName is not a SEQUENCE")?;
    let mut entries = Reader::new(seq);
    while !entries.is_empty() {
        let (tag, value) = entries.next_tlv()?;
        if tag != DNS_NAME {
            continue;
        }
        let name =
            std::str::from_utf8(value).ok().filter(|s| s.is_ascii()).ok_or(MalformedCert("dNSName is not ASCII"))?;
        let name = normalize(name);
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(())
}

/// Lower-cases a DNS name and drops one trailing dot, so lookups compare like with like.
pub(crate) fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A cursor over a run of DER TLVs (also used by the tests to take keys apart).
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(rest: &'a [u8]) -> Self {
        Self { rest }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads the next TLV and checks its tag; returns its value bytes.
    pub(super) fn expect(&mut self, tag: u8, why: &'static str) -> Result<&'a [u8], MalformedCert> {
        match self.next_tlv()? {
            (t, value) if t == tag => Ok(value),
            _ => Err(MalformedCert(why)),
        }
    }

    /// Reads the next tag, length and value. Only single-byte tags and definite lengths (as DER
    /// requires) of up to four length bytes are accepted.
    pub(super) fn next_tlv(&mut self) -> Result<(u8, &'a [u8]), MalformedCert> {
        const TRUNCATED: MalformedCert = MalformedCert("truncated DER");
        let (&tag, rest) = self.rest.split_first().ok_or(TRUNCATED)?;
        if tag & 0x1f == 0x1f {
            return Err(MalformedCert("multi-byte DER tag"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(TRUNCATED)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(MalformedCert("unsupported DER length"));
            }
            let (bytes, after) = rest.split_at_checked(count).ok_or(TRUNCATED)?;
            rest = after;
            bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (value, after) = rest.split_at_checked(len).ok_or(TRUNCATED)?;
        self.rest = after;
        Ok((tag, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> Vec<u8> {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
        ck.cert.der().to_vec()
    }

    #[test]
    fn reads_exact_and_wildcard_names_in_order() {
        let der = cert_for(&["a.test", "*.Wild.Test", "b.test."]);
        assert_eq!(dns_names(&der).expect("parse"), vec!["a.test", "*.wild.test", "b.test"]);
    }

    #[test]
    fn skips_ip_addresses() {
        let der = cert_for(&["127.0.0.1", "c.test"]);
        assert_eq!(dns_names(&der).expect("parse"), vec!["c.test"]);
    }

    #[test]
    fn certificate_without_names_gives_empty_list() {
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        assert_eq!(dns_names(cert.der()).expect("parse"), Vec::<String>::new());
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let der = cert_for(&["a.test"]);
        for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            assert!(dns_names(&der[..cut]).is_err(), "cut at {cut} parsed");
        }
        assert!(dns_names(b"not a certificate at all").is_err());
        assert!(dns_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
