//! Chunked uploads: PATCH with Content-Range, the status of the upload after
//! each chunk, closing PUTs with and without a last chunk, chunks out of
//! order, and the upload URL once the upload is over.

use super::{follow_blob_location, need, prep, verify_blob, Ctx};
use crate::api::{with_query, Res};
use crate::client::Request;
use crate::exchange::Exchange;
use crate::oci;
use crate::spec;

/// Chunk size unless the registry asks for more (`OCI-Chunk-Min-Length`).
const CHUNK: usize = 100 * 1024;

pub fn run(ctx: &Ctx) {
    patches(ctx);
    final_chunk_in_put(ctx);
    out_of_order(ctx);
    cancel(ctx);
}

/// One chunk's PATCH and the status GET that followed it.
struct Sent {
    patch: Exchange,
    status: Exchange,
    end: usize,
}

/// A session and the chunk size to use in it.
fn open(ctx: &Ctx, repo: &str) -> Res<(String, usize)> {
    let c = &ctx.client;
    let ex = c.post_upload(repo, &[], b"")?;
    ex.expect_status(&[202])?;
    let min = ex
        .header("oci-chunk-min-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    Ok((c.location(&ex)?, CHUNK.max(min)))
}

fn expect_range(ex: &Exchange, end: usize) -> Res<()> {
    let want = format!("0-{end}");
    let got = ex.require_header("range")?;
    // Some registries prefix the unit, as in a Content-Range.
    ex.ensure(got.trim().trim_start_matches("bytes=") == want, || {
        format!("Range: {want}, got {got:?}")
    })
    .map(|_| ())
}

fn patches(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("chunked");
    let uploaded = ctx.step(
        "push.chunk.patch",
        "each PATCH with Content-Range answers 202 with Location and Range: 0-<end>",
        &spec::PATCH_202,
        || {
            let (mut loc, chunk) = prep("upload session", open(ctx, &repo))?;
            let data = oci::random_bytes(21, 3 * chunk - 123);
            let mut sent = Vec::new();
            for (i, piece) in data.chunks(chunk).enumerate() {
                let start = i * chunk;
                let end = start + piece.len() - 1;
                let patch = c.patch_chunk(&loc, start, piece)?;
                patch.expect_status(&[202])?;
                expect_range(&patch, end)?;
                loc = c.location(&patch)?;
                // The status of the upload after every chunk; the next
                // chunk goes to the Location it names.
                let status = c.get(loc.as_str())?;
                if let Ok(next) = c.location(&status) {
                    loc = next;
                }
                sent.push(Sent { patch, status, end });
            }
            Ok((loc, data, sent))
        },
    );
    ctx.check(
        "push.chunk.status",
        "after each PATCH, GET on the upload answers 204 with Location and Range: 0-<end>",
        &spec::STATUS_204,
        || {
            let (_, _, sent) = need(&uploaded)?;
            for s in sent {
                s.status.expect_status(&[204])?;
                s.status.expect_header("location")?;
                expect_range(&s.status, s.end)?;
            }
            Ok(())
        },
    );
    ctx.check(
        "push.chunk.docker-uuid",
        "PATCH and status answers carry Docker-Upload-UUID",
        &spec::X_UPLOAD_UUID,
        || {
            let (_, _, sent) = need(&uploaded)?;
            for s in sent {
                s.patch.expect_header("docker-upload-uuid")?;
                s.status.expect_header("docker-upload-uuid")?;
            }
            Ok(())
        },
    );
    ctx.check(
        "push.chunk.head",
        "HEAD on the upload URL answers like the status GET, without a body",
        &spec::X_UPLOAD_HEAD,
        || {
            let (loc, data, _) = need(&uploaded)?;
            let ex = c.head(loc.as_str())?;
            ex.expect_status(&[200, 204])?;
            expect_range(&ex, data.len() - 1)?;
            ex.expect_empty_body().map(|_| ())
        },
    );
    let closed = ctx.step(
        "push.chunk.close",
        "the closing PUT ?digest= without a body answers 201 with a Location serving the blob",
        &spec::CLOSE_PUT,
        || {
            let (loc, data, _) = need(&uploaded)?;
            let d = oci::sha256(data);
            let ex = c.put_upload(loc, &d, b"")?;
            ex.expect_status(&[201])?;
            follow_blob_location(c, &ex, data)?;
            verify_blob(c, &repo, data, &d)
        },
    );
    let ended = ctx.step(
        "push.chunk.status-after-close",
        "the upload URL of a completed upload answers 404",
        &spec::STATUS_INACTIVE,
        || {
            need(&closed)?;
            let (loc, _, _) = need(&uploaded)?;
            let ex = c.get(loc.as_str())?;
            ex.expect_status(&[404])?;
            Ok(ex)
        },
    );
    ctx.check(
        "push.chunk.status-after-close.code",
        "that 404 is BLOB_UPLOAD_UNKNOWN",
        &spec::X_ERROR_CODE,
        || {
            need(&ended)?
                .expect_error(&[404], &["BLOB_UPLOAD_UNKNOWN"])
                .map(|_| ())
        },
    );
}

fn final_chunk_in_put(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("chunked-put");
    ctx.check(
        "push.chunk.last-in-put",
        "a chunked upload closed by a PUT carrying the last chunk answers 201",
        &spec::FINAL_CHUNK_IN_PUT,
        || {
            let (loc, chunk) = prep("upload session", open(ctx, &repo))?;
            let data = oci::random_bytes(22, 2 * chunk - 7);
            let d = oci::sha256(&data);
            let (first, last) = data.split_at(chunk);
            let ex = prep("first chunk", c.patch_chunk(&loc, 0, first))?;
            prep("first chunk", ex.expect_status(&[202]).map(|_| ()))?;
            let loc = c.location(&ex)?;
            let req = Request::new("PUT", with_query(&loc, &[("digest", &d)]))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{chunk}-{}", data.len() - 1))
                .body(last);
            let ex = c.send(req)?;
            ex.expect_status(&[201])?;
            follow_blob_location(c, &ex, &data)?;
            verify_blob(c, &repo, &data, &d)
        },
    );
}

fn out_of_order(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("chunk-order");
    ctx.check(
        "push.chunk.out-of-order",
        "a chunk that does not start where the upload ends answers 416",
        &spec::CHUNK_ORDER,
        || {
            let data = oci::random_bytes(23, 3 * 1024);
            // A first chunk that does not begin at 0 (as the spec's suite
            // sends it).
            let (loc, _) = prep("upload session", open(ctx, &repo))?;
            c.patch_chunk(&loc, 1024, &data[1024..2048])?
                .expect_status(&[416])?;
            // A gap after an accepted chunk.
            let (loc, _) = prep("upload session", open(ctx, &repo))?;
            let ex = prep("first chunk", c.patch_chunk(&loc, 0, &data[..1024]))?;
            prep("first chunk", ex.expect_status(&[202]).map(|_| ()))?;
            let loc = c.location(&ex)?;
            c.patch_chunk(&loc, 2048, &data[2048..])?
                .expect_status(&[416])
                .map(|_| ())
        },
    );
}

fn cancel(ctx: &Ctx) {
    let c = &ctx.client;
    let repo = ctx.repo("cancel");
    ctx.check(
        "push.cancel",
        "DELETE on an upload URL answers 204, then the upload is unknown (404)",
        &spec::X_UPLOAD_CANCEL,
        || {
            let (loc, _) = prep("upload session", open(ctx, &repo))?;
            let ex = prep(
                "chunk",
                c.patch_chunk(&loc, 0, &oci::random_bytes(32, 1024)),
            )?;
            prep("chunk", ex.expect_status(&[202]).map(|_| ()))?;
            let loc = c.location(&ex)?;
            c.delete(loc.as_str())?.expect_status(&[204])?;
            c.get(loc.as_str())?.expect_status(&[404]).map(|_| ())
        },
    );
}
