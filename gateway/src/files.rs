//! Streamed REST bodies: files in and out without holding them whole.
//!
//! An **upload** is an RPC that takes a stream of requests whose `body` field is a
//! `google.api.HttpBody`: the first message carries the path and query fields and the claimed
//! `Content-Type`, and the HTTP body's bytes follow as they arrive, each piece as one message that
//! sets only the body field's `data`. When a client breaks off mid-body the gateway drops the call
//! and never ends its stream, so the upstream never mistakes a truncated file for a whole one (it
//! gives up when the stream is reset or, at the latest, at the call's deadline).
//!
//! A **download** is an RPC that returns a stream of `google.api.HttpBody`: the first message's
//! `content_type` becomes the response's `Content-Type` and every message's `data` is written as
//! it comes; an upstream failure after the first byte aborts the response (the client sees a cut
//! transfer, never a short file that looks complete).

use bytes::{BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{HeaderValue, Response, StatusCode, header};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::routes::Binding;
use crate::transcode;

/// The most bytes one upstream message carries: the upstream sees small, even pieces whatever
/// the client's writes were.
const PIECE: usize = 64 * 1024;

/// `google.api.HttpBody.data`.
const HTTP_BODY_DATA: u32 = 2;

/// Whether `binding` is an upload: a client-streaming RPC whose body field is an `HttpBody`.
pub fn is_upload(binding: &Binding) -> bool {
    binding.method.is_client_streaming() && body_field(binding).is_some()
}

/// Whether `binding` answers with a stream of `HttpBody` (a download).
pub fn is_download(binding: &Binding) -> bool {
    binding.method.is_server_streaming()
        && binding.response_body.is_none()
        && binding.method.output().full_name() == "google.api.HttpBody"
}

/// The number of the request's `HttpBody` body field.
fn body_field(binding: &Binding) -> Option<u32> {
    let name = binding.body.as_deref().filter(|b| *b != "*")?;
    let field = binding.method.input().get_field_by_name(name)?;
    match field.kind() {
        prost_reflect::Kind::Message(m)
            if m.full_name() == "google.api.HttpBody" && !field.is_list() =>
        {
            Some(field.number())
        }
        _ => None,
    }
}

/// One request message that sets only `body_field.data` to `data`.
fn data_message(body_field: u32, data: &[u8]) -> Bytes {
    let inner = key_len(HTTP_BODY_DATA) + encoded_len_varint(data.len() as u64) + data.len();
    let mut out =
        BytesMut::with_capacity(key_len(body_field) + encoded_len_varint(inner as u64) + inner);
    encode_key(body_field, WireType::LengthDelimited, &mut out);
    encode_varint(inner as u64, &mut out);
    encode_key(HTTP_BODY_DATA, WireType::LengthDelimited, &mut out);
    encode_varint(data.len() as u64, &mut out);
    out.put_slice(data);
    out.freeze()
}

/// Why an upload's body stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The client's body failed (disconnect, a length that does not match).
    Body,
    /// More than the gateway's limit was sent.
    TooLarge,
}

/// The upload's request messages: `first`, then one per piece of `body`. When the body breaks
/// off or exceeds `limit`, `broken` is told and the stream never ends (the caller drops the call;
/// the upstream sees no end of its stream and gives up at the deadline at the latest).
pub fn upload_messages(
    binding: &Binding,
    first: Bytes,
    body: axum::body::Body,
    limit: u64,
    broken: tokio::sync::oneshot::Sender<Broken>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let field = body_field(binding).unwrap_or(0);
    let mut broken = Some(broken);
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&stopped);
    let mut sent = 0u64;
    let pieces = body
        .into_data_stream()
        .filter_map(move |piece| {
            let failure = match &piece {
                Ok(data) => {
                    sent += data.len() as u64;
                    (sent > limit).then_some(Broken::TooLarge)
                }
                Err(_) => Some(Broken::Body),
            };
            if let Some(failure) = failure
                && let Some(tell) = broken.take()
            {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = tell.send(failure);
            }
            let messages: Vec<Bytes> = match piece {
                Ok(data) if broken.is_some() => {
                    data.chunks(PIECE).map(|d| data_message(field, d)).collect()
                }
                _ => Vec::new(),
            };
            std::future::ready(Some(futures::stream::iter(messages)))
        })
        .flatten();
    // A whole body ends the stream (the upstream commits); a broken one never ends it.
    let end = futures::stream::poll_fn(move |_| {
        if stopped.load(std::sync::atomic::Ordering::SeqCst) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(None)
        }
    });
    futures::stream::once(std::future::ready(first))
        .chain(pieces)
        .chain(end)
}

/// The raw response of a download whose first message is `first`, the rest following in
/// `rest`: `Content-Type` from the first message, the bytes as they come.
pub fn download_response(
    binding: &Binding,
    first: &[u8],
    rest: tonic::Streaming<Bytes>,
) -> Result<Response<axum::body::Body>, String> {
    let head = transcode::render_response(binding, first)?;
    let binding = binding.clone();
    let tail = rest.map(move |item| match item {
        Ok(bytes) => transcode::render_response(&binding, &bytes)
            .map(|rendered| Bytes::from(rendered.body))
            .map_err(std::io::Error::other),
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "a download broke off upstream");
            Err(std::io::Error::other(status.message().to_owned()))
        }
    });
    let body = futures::stream::once(std::future::ready(Ok(Bytes::from(head.body)))).chain(tail);
    let mut response = Response::new(axum::body::Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    if let Ok(value) = HeaderValue::from_str(&head.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    // Browsers take the type as told (a text file full of markup stays text).
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_messages_decode_as_http_bodies() {
        use prost::Message;
        use taskmesh_contracts::notes_v1::CreateAttachmentRequest;
        let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let decoded = CreateAttachmentRequest::decode(data_message(3, &data)).expect("decodes");
        let content = decoded.content.expect("the body field");
        assert_eq!(content.data, data);
        assert!(content.content_type.is_empty() && decoded.parent.is_empty());
        let empty = CreateAttachmentRequest::decode(data_message(3, &[])).expect("decodes");
        assert!(empty.content.expect("set").data.is_empty());
    }
}
