//! The encode step, between serving a request and decorating its answer. Before the request is served,
//! `negotiate` reads what the client accepts and puts the request's encoding class (`br`, `gzip`, `zstd` or
//! `identity`) in place of its `Accept-Encoding`, so cache keys and the upstream see one value per class. After,
//! `encode` gives the answer the coding the client prefers among `compression.algorithms`: from the stored
//! object's encoded variant when there is one (`Cache-Status: ...; detail=encoded-hit`), else by streaming it
//! through an encoder (`detail=encoded`) and keeping the output with the stored object once it is complete, so the
//! encoder runs once per coding per object. The origin's own coding passes through to a client that accepts it;
//! one that accepts none of them gets the body decoded (`detail=decoded`), or re-encoded in a coding it accepts.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;

use super::{ClientConn, Proxy, content_length, request_host};
use crate::cache::{CachedObject, EncodedVariants, Lookup, PrimaryKey, Store, map_lookup};
use crate::compress::encoder::OnComplete;
use crate::compress::representation::{none_match, set_transformed, transformed_etag, vary_on_accept_encoding};
use crate::compress::{AcceptEncoding, BodyCoding, CodedBody, Coding, HeadVerdict, Meter, Transcode, negotiate, rules};
use crate::policy::CacheStatus;
use crate::policy::conditional::NOT_MODIFIED_FIELDS;
use crate::proxy::body::ProxyBody;

/// What the encode step needs to know of the request once it has been served.
pub(super) struct Wants {
    /// The client's `Accept-Encoding`; `None` when it sent none (any coding is then acceptable: sent as is).
    accept: Option<AcceptEncoding>,
    head: bool,
    ranged: bool,
    /// The request said `Cache-Control: no-transform`.
    no_transform: bool,
    if_none_match: Vec<HeaderValue>,
    /// The URL and the request's fields as served (class in place of `Accept-Encoding`): where to find the stored
    /// object an encoded variant belongs to. Only for a `GET` that accepts some coding.
    place: Option<(PrimaryKey, HeaderMap)>,
}

/// The fields (validators, `Date`, coding) that, with its length, tell which stored object a fetched body became.
struct Fetched {
    fields: [Option<HeaderValue>; 4],
}

impl Fetched {
    fn of(headers: &HeaderMap) -> Fetched {
        let get = |name: header::HeaderName| headers.get(name).cloned();
        Fetched {
            fields: [get(header::ETAG), get(header::LAST_MODIFIED), get(header::DATE), get(header::CONTENT_ENCODING)],
        }
    }

    /// Whether `object` holds the body this answer streamed (`raw_len` bytes).
    fn is(&self, object: &CachedObject, raw_len: u64) -> bool {
        object.body.len() as u64 == raw_len && Fetched::of(&object.headers.to_map()).fields == self.fields
    }
}

impl Proxy {
    /// Reads what the client accepts and puts its encoding class in place of `Accept-Encoding`. `None` when the
    /// encode step has nothing to do for this request (compression off, a method other than GET and HEAD).
    pub(super) fn negotiate<B>(&self, request: &mut Request<B>, conn: ClientConn) -> Option<Wants> {
        let method = request.method();
        if !self.compression.enabled() || (method != Method::GET && method != Method::HEAD) {
            return None;
        }
        let head = method == Method::HEAD;
        let headers = request.headers();
        let accept = AcceptEncoding::of(headers);
        let ranged = map_lookup::holds(headers, &header::RANGE);
        let no_transform = rules::no_transform(headers);
        let if_none_match = map_lookup::all(headers, &header::IF_NONE_MATCH).cloned().collect();
        if let Some(accept) = &accept {
            let class = negotiate::class(accept, &self.compression.algorithms);
            request.headers_mut().insert(header::ACCEPT_ENCODING, HeaderValue::from_static(class));
        }
        let place = match &accept {
            Some(accept) if !head && accept.choose(&self.compression.algorithms).is_some() => request_host(request)
                .map(|host| (PrimaryKey::new(conn.scheme, host, request.uri()), request.headers().clone())),
            _ => None,
        };
        Some(Wants { accept, head, ranged, no_transform, if_none_match, place })
    }

    /// Gives the answer the coding the client should get (see the module doc).
    pub(super) fn encode(
        &self,
        wants: Option<Wants>,
        response: Response<ProxyBody>,
        status: &mut CacheStatus,
    ) -> Response<ProxyBody> {
        let Some(wants) = wants else { return response };
        let (mut head, body) = response.into_parts();
        let c = &self.compression;
        // An answer from the cache brings the verdict on its stored head, worked out on the object's first hit.
        let verdict = body.stored_variants().and_then(EncodedVariants::verdict).unwrap_or_else(|| {
            let len = body.size_hint().exact().filter(|&n| n > 0).or_else(|| content_length(&head.headers));
            HeadVerdict::of(c, head.status, &head.headers, len)
        });
        let from = match verdict.from {
            BodyCoding::Identity => None,
            BodyCoding::Known(coding) => Some(coding),
            BodyCoding::Other => return Response::from_parts(head, body),
        };
        let transformable = verdict.transformable && !wants.no_transform;
        let compressible = transformable && verdict.compressible;
        if !(compressible || (transformable && from.is_some())) {
            return Response::from_parts(head, body);
        }
        // The coding of this answer depends on the request's Accept-Encoding, whatever this request gets.
        vary_on_accept_encoding(&mut head.headers);
        let Some(accept) = &wants.accept else { return Response::from_parts(head, body) };
        if wants.ranged || from.is_some_and(|coding| accept.accepts(coding)) {
            return Response::from_parts(head, body);
        }
        let to = if compressible { accept.choose(&c.algorithms) } else { None };
        if from.is_none() && to.is_none() {
            return Response::from_parts(head, body);
        }

        // A conditional request naming the transformed ETag.
        if !wants.if_none_match.is_empty()
            && let Some(etag) = head.headers.get(header::ETAG).and_then(|e| transformed_etag(e, to))
            && none_match(&wants.if_none_match, &etag)
        {
            set_transformed(&mut head.headers, to, None);
            drain(body);
            return not_modified(&head.headers);
        }

        let variants = body.stored_variants().cloned();
        if let (Some(to), Some(variants)) = (to, &variants)
            && let Some(encoded) = variants.get(to)
        {
            set_transformed(&mut head.headers, Some(to), Some(encoded.len() as u64));
            status.detail.get_or_insert("encoded-hit");
            let body = if wants.head { ProxyBody::empty() } else { ProxyBody::full(encoded.clone()) };
            return Response::from_parts(head, body);
        }
        let fetched = Fetched::of(&head.headers);
        set_transformed(&mut head.headers, to, None);
        if wants.head {
            return Response::from_parts(head, body);
        }
        status.detail.get_or_insert(if to.is_some() { "encoded" } else { "decoded" });
        let meter = to.map(|to| Meter {
            bytes_in: self.metrics.compressed_bytes.with_label_values(&[to.as_str(), "in"]),
            bytes_out: self.metrics.compressed_bytes.with_label_values(&[to.as_str(), "out"]),
        });
        // Keep the output with the stored object: the one this hit came from, or the one this miss was stored as.
        let keep = match (to, wants.place) {
            (Some(to), Some(place)) if variants.is_some() || status.stored => {
                let limit = self.store.max_object_size();
                Some((limit, keeper(self.store.clone(), place, to, variants, fetched)))
            }
            _ => None,
        };
        let transcode = Transcode { from, to, levels: c.levels };
        Response::from_parts(head, ProxyBody::Coded(Box::new(CodedBody::new(body, transcode, meter, keep))))
    }
}

/// What keeps a completed encoded body with its stored object, weighing the object anew. `hit`: the variants of
/// the object the answer came from; else the object is the one stored from this fetch, if it still is.
fn keeper(
    store: Arc<Store>,
    (primary, request): (PrimaryKey, HeaderMap),
    to: Coding,
    hit: Option<EncodedVariants>,
    fetched: Fetched,
) -> OnComplete {
    Box::new(move |encoded: Bytes, raw_len: u64| {
        let Lookup::Found(at, object) = store.lookup(&primary, &request) else { return };
        let ours = match &hit {
            Some(variants) => variants.is_of(&object),
            None => fetched.is(&object, raw_len),
        };
        if ours && object.encoded.set(to, encoded) {
            store.reweigh(&at.key(&primary), &object);
        }
    })
}

/// A 304 with the fields a 304 carries (RFC 9110 §15.4.5), from the transformed 200's.
fn not_modified(headers: &HeaderMap) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    for name in NOT_MODIFIED_FIELDS.iter().chain([&header::LAST_MODIFIED, &header::AGE]) {
        for value in headers.get_all(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// A body the client will not get: an upstream body being stored is read to its end, so it still is.
fn drain(body: ProxyBody) {
    if let ProxyBody::Stream(_) = body {
        tokio::spawn(async move {
            let _ = body.collect().await;
        });
    }
}
