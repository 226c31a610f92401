//! `GET /v2/`: the API version check.

use super::Ctx;
use crate::client::Request;
use crate::spec;

pub fn run(ctx: &Ctx) {
    let c = &ctx.client;
    ctx.check(
        "base.v2",
        "GET /v2/ answers 200 (after authenticating, if challenged with 401)",
        &spec::BASE,
        || {
            let anon = c.send(Request::new("GET", c.url("/v2/")).anonymous())?;
            if anon.status == 401 {
                anon.expect_header("www-authenticate")?;
            } else {
                anon.expect_status(&[200])?;
            }
            c.get(c.url("/v2/"))?.expect_status(&[200]).map(|_| ())
        },
    );
    ctx.check(
        "base.api-version",
        "GET /v2/ carries Docker-Distribution-API-Version: registry/2.0",
        &spec::X_API_VERSION,
        || {
            c.get(c.url("/v2/"))?
                .expect_header_eq("docker-distribution-api-version", "registry/2.0")
                .map(|_| ())
        },
    );
}
