//! The `edgecache` command: parses the command line, loads the config and hands over to the library.

fn main() {}
