//! Compression: `Accept-Encoding` negotiation, what is compressible, the header fields of a transformed answer and
//! the streaming encoders. The encode step of the pipeline (`proxy/encode.rs`) puts these together; the encoded
//! variants it produces are kept with the stored object they were made from (`cache/encoded.rs`).

pub mod coding;
pub mod encoder;
pub mod negotiate;
pub mod representation;
pub mod rules;
pub mod verdict;

pub use coding::{BodyCoding, Coding};
pub use encoder::{CodedBody, Levels, Meter, Transcode};
pub use negotiate::AcceptEncoding;
pub use verdict::HeadVerdict;

use crate::config::CompressionConfig;
use rules::MediaTypes;

/// `[compression]`, ready to use.
#[derive(Debug, Clone)]
pub struct Compression {
    /// The codings produced, in order of preference; empty: compression is off.
    pub algorithms: Vec<Coding>,
    /// Smaller responses are sent as they are.
    pub min_size: u64,
    pub types: MediaTypes,
    pub levels: Levels,
}

impl Compression {
    /// From the validated config.
    pub fn new(config: &CompressionConfig) -> Compression {
        let level = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Compression {
            algorithms: config.algorithms.iter().filter_map(|a| Coding::from_token(a)).collect(),
            min_size: config.min_size,
            types: MediaTypes::new(&config.types),
            levels: Levels {
                gzip: level(config.gzip_level),
                brotli: level(config.brotli_level),
                zstd: level(config.zstd_level),
            },
        }
    }

    /// Whether any coding is produced.
    pub fn enabled(&self) -> bool {
        !self.algorithms.is_empty()
    }
}

impl Default for Compression {
    /// The defaults of `[compression]`.
    fn default() -> Compression {
        Compression::new(&CompressionConfig::defaults())
    }
}
