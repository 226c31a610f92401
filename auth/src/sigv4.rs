//! AWS Signature Version 4 verification for the ECR API: parse the
//! `Authorization` header, check the credential scope and the clock, then
//! compute the signature the key's secret gives for the same request and
//! compare in constant time.
//!
//! The canonical request (header normalisation, URI encoding, the string to
//! sign, the key derivation) is `aws-sigv4`'s, the AWS SDK for Rust's own
//! signer: the request is signed again with the client's date, over exactly
//! the headers the client said it signed, and the two signatures compared.
//! Nothing of the canonicalisation is written here.

use crate::password::ct_eq;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW_SECS: u64 = 15 * 60;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What an `Authorization: AWS4-HMAC-SHA256 ...` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, as listed.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Why a signature was refused; the ECR error each maps to is the
/// caller's business (see the registry's ECR errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No `Authorization` header, or not SigV4: unsigned.
    #[error("Missing Authentication Token")]
    Missing,
    /// A header that is SigV4 but not well-formed.
    #[error("{0}")]
    Malformed(String),
    /// The key is unknown (or disabled, or its account gone).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// Signed too long ago or ahead.
    #[error("Signature expired: {date} is now earlier than {earliest} ({now} - 15 min.)")]
    Expired {
        date: String,
        earliest: String,
        now: String,
    },
    /// A date in the future beyond the skew.
    #[error("Signature not yet current: {date} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        date: String,
        latest: String,
        now: String,
    },
    /// The scope names another service, a region not served, or a date
    /// other than the request's.
    #[error("{0}")]
    Scope(String),
    /// The signature does not match (wrong secret, a changed body or
    /// header).
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    Mismatch,
}

impl Authorization {
    /// Parse the header's value; `Missing` unless it is SigV4 at all.
    pub fn parse(value: &str) -> Result<Authorization, SigError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or(SigError::Missing)?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let malformed = |what: &str| {
            SigError::Malformed(format!(
                "Authorization header requires '{what}' parameter. Authorization={value_cut}",
                value_cut = value.split(',').next().unwrap_or_default()
            ))
        };
        let credential = credential.ok_or_else(|| malformed("Credential"))?;
        let signed = signed.ok_or_else(|| malformed("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| malformed("Signature"))?;
        let fields: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminal] = fields[..] else {
            return Err(SigError::Malformed(format!(
                "Credential should be scoped to a valid region, not a malformed scope: {credential}"
            )));
        };
        if terminal != "aws4_request" {
            return Err(SigError::Malformed(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminal}'."
            )));
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SigError::Malformed(
                "Signature must be 64 hexadecimal digits".into(),
            ));
        }
        let signed_headers: Vec<String> = signed
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Ok(Authorization {
            access_key_id: key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }
}

/// A request as signed: its method, path and query as sent (encoded),
/// every header (names any case; repeated names appear repeatedly), and
/// the body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// `X-Amz-Date` (`20150830T123600Z`) as Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).ok()
}

/// Unix seconds as `X-Amz-Date` text.
pub fn format_amz_date(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// What must hold of a request before its signature is worth computing:
/// the scope's service and region, and the date within the skew. Returns
/// the signing time.
pub fn check_scope(
    auth: &Authorization,
    req: &Request<'_>,
    service: &str,
    regions: &[String],
    now: u64,
) -> Result<u64, SigError> {
    if auth.service != service {
        return Err(SigError::Scope(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if !regions.contains(&auth.region) {
        return Err(SigError::Scope(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    for needed in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == needed) {
            return Err(SigError::Malformed(format!(
                "'{needed}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let date = req.header("x-amz-date").ok_or_else(|| {
        SigError::Malformed(
            "Authorization header requires existence of an 'X-Amz-Date' header.".into(),
        )
    })?;
    let at = parse_amz_date(date)
        .ok_or_else(|| SigError::Malformed(format!("Invalid X-Amz-Date: {date}")))?;
    if !date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(SigError::Scope(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{date}'.",
            auth.date,
            &date[..8]
        )));
    }
    if at + MAX_SKEW_SECS < now {
        return Err(SigError::Expired {
            date: date.to_owned(),
            earliest: format_amz_date(now - MAX_SKEW_SECS),
            now: format_amz_date(now),
        });
    }
    if at > now + MAX_SKEW_SECS {
        return Err(SigError::NotYetCurrent {
            date: date.to_owned(),
            latest: format_amz_date(now + MAX_SKEW_SECS),
            now: format_amz_date(now),
        });
    }
    Ok(at)
}

/// Whether `req` is signed by the key with `secret` as `auth` says, at
/// `signed_at` (from [`check_scope`]). A signed `x-amz-content-sha256`
/// must be the body's hash (the signature covers the body either way).
pub fn verify(
    auth: &Authorization,
    req: &Request<'_>,
    secret: &str,
    signed_at: u64,
) -> Result<(), SigError> {
    use sha2::Digest;
    if let Some(claimed) = req.header("x-amz-content-sha256") {
        let actual = hex_lower(&sha2::Sha256::digest(req.body));
        if claimed != "UNSIGNED-PAYLOAD" && !claimed.eq_ignore_ascii_case(&actual) {
            return Err(SigError::Mismatch);
        }
    }
    // The signer signs every header it is given (the default settings
    // leave out a few, like user-agent: here none, since the client chose).
    let mut headers: Vec<(&str, String)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect();
        if values.is_empty() {
            // Signed but not sent: the client's canonical request cannot
            // be rebuilt.
            return Err(SigError::Mismatch);
        }
        headers.push((name.as_str(), values.join(",")));
    }
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let identity: Identity = Credentials::new(
        auth.access_key_id.clone(),
        secret.to_owned(),
        None,
        None,
        "registry",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(UNIX_EPOCH + Duration::from_secs(signed_at))
        .settings(settings)
        .build()
        .map_err(|e| SigError::Malformed(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.path_and_query,
        headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| SigError::Malformed(e.to_string()))?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| SigError::Malformed(e.to_string()))?
        .into_parts();
    if ct_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Sign `req` (its headers must include `host` and `x-amz-date`) with
/// `key_id`/`secret`: the `Authorization` value a client would send. For
/// tests and the benchmark; the registry itself only verifies.
pub fn sign_for_tests(
    req: &Request<'_>,
    key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> String {
    let at = req
        .header("x-amz-date")
        .and_then(parse_amz_date)
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let date = format_amz_date(at);
    // Sign with a signature of zeros, to learn the real one by verifying.
    let mut auth = Authorization {
        access_key_id: key_id.to_owned(),
        date: date[..8].to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: names,
        signature: String::new(),
    };
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let identity: Identity =
        Credentials::new(key_id.to_owned(), secret.to_owned(), None, None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(at))
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.path_and_query,
        req.headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .expect("request");
    let (_, sig) = sign(signable, &params).expect("sign").into_parts();
    auth.signature = sig;
    format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        auth.access_key_id,
        auth.date,
        auth.region,
        auth.service,
        auth.signed_headers.join(";"),
        auth.signature
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn regions() -> Vec<String> {
        vec!["us-east-1".to_owned()]
    }

    /// The AWS test suite's `get-vanilla` case: a known request and the
    /// signature AWS documents for it.
    #[test]
    fn the_aws_test_suite_vanilla_request_verifies() {
        let req = Request {
            method: "GET",
            path_and_query: "/",
            headers: vec![
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            body: b"",
        };
        let auth = Authorization::parse("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31").unwrap();
        let at = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(at, 1_440_938_160);
        assert_eq!(verify(&auth, &req, SECRET, at), Ok(()));
        assert_eq!(verify(&auth, &req, "wrong", at), Err(SigError::Mismatch));
    }

    fn ecr_request(body: &'static [u8], date: &'static str) -> Request<'static> {
        Request {
            method: "POST",
            path_and_query: "/",
            headers: vec![
                ("Host", "localhost:5000"),
                ("X-Amz-Date", date),
                ("Content-Type", "application/x-amz-json-1.1"),
                (
                    "X-Amz-Target",
                    "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry",
                ),
                ("User-Agent", "aws-cli/2"),
            ],
            body,
        }
    }

    #[test]
    fn a_signed_request_verifies_and_a_changed_one_does_not() {
        let req = ecr_request(b"{}", "20260101T000000Z");
        let now = parse_amz_date("20260101T000500Z").unwrap();
        let header = sign_for_tests(&req, KEY, SECRET, "us-east-1", "ecr");
        let auth = Authorization::parse(&header).unwrap();
        let at = check_scope(&auth, &req, "ecr", &regions(), now).unwrap();
        assert_eq!(verify(&auth, &req, SECRET, at), Ok(()));
        // A tampered body, a header changed after signing.
        let tampered = Request {
            body: b"{\"x\":1}",
            ..ecr_request(b"{}", "20260101T000000Z")
        };
        assert_eq!(
            verify(&auth, &tampered, SECRET, at),
            Err(SigError::Mismatch)
        );
        let mut other = ecr_request(b"{}", "20260101T000000Z");
        other.headers[3].1 = "AmazonEC2ContainerRegistry_V20150921.DeleteRepository";
        assert_eq!(verify(&auth, &other, SECRET, at), Err(SigError::Mismatch));
        assert_eq!(
            verify(&auth, &req, "not the secret", at),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn dates_scopes_and_headers_are_checked_first() {
        let req = ecr_request(b"{}", "20260101T000000Z");
        let auth =
            Authorization::parse(&sign_for_tests(&req, KEY, SECRET, "us-east-1", "ecr")).unwrap();
        let t0 = parse_amz_date("20260101T000000Z").unwrap();
        assert!(matches!(
            check_scope(&auth, &req, "ecr", &regions(), t0 + MAX_SKEW_SECS + 1),
            Err(SigError::Expired { .. })
        ));
        assert!(matches!(
            check_scope(&auth, &req, "ecr", &regions(), t0 - MAX_SKEW_SECS - 1),
            Err(SigError::NotYetCurrent { .. })
        ));
        assert!(check_scope(&auth, &req, "ecr", &regions(), t0 + MAX_SKEW_SECS).is_ok());
        assert!(matches!(
            check_scope(&auth, &req, "s3", &regions(), t0),
            Err(SigError::Scope(_))
        ));
        assert!(matches!(
            check_scope(&auth, &req, "ecr", &["eu-west-1".to_owned()], t0),
            Err(SigError::Scope(_))
        ));
        let e = check_scope(&auth, &req, "ecr", &regions(), t0 + 16 * 60).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Signature expired: 20260101T000000Z is now earlier than 20260101T000100Z (20260101T001600Z - 15 min.)"
        );
    }

    #[test]
    fn headers_that_are_not_sigv4_are_unsigned() {
        assert_eq!(Authorization::parse("Basic eDp5"), Err(SigError::Missing));
        assert_eq!(Authorization::parse(""), Err(SigError::Missing));
        assert!(matches!(
            Authorization::parse("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request"),
            Err(SigError::Malformed(_))
        ));
        assert!(matches!(
            Authorization::parse(
                "AWS4-HMAC-SHA256 Credential=a/b/c/aws4_request, SignedHeaders=host, Signature=00"
            ),
            Err(SigError::Malformed(_))
        ));
    }

    /// What one verification costs (printed; `cargo test -p auth --release
    /// sigv4::tests::verification_cost -- --nocapture` for the figure of an
    /// optimised build): parse, scope and the signature computed again.
    #[test]
    fn verification_cost() {
        let req = ecr_request(
            br#"{"repositoryName":"team/app","maxResults":1000}"#,
            "20260101T000000Z",
        );
        let header = sign_for_tests(&req, KEY, SECRET, "us-east-1", "ecr");
        let now = parse_amz_date("20260101T000100Z").unwrap();
        let n = 2_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let auth = Authorization::parse(&header).unwrap();
            let at = check_scope(&auth, &req, "ecr", &regions(), now).unwrap();
            verify(&auth, &req, SECRET, at).unwrap();
        }
        let micros = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("SigV4 verification: {micros:.1} µs per request");
        assert!(micros < 20_000.0, "{micros} µs");
    }

    #[test]
    fn amz_dates_round_trip() {
        for t in [0, 951_782_400, 1_440_938_160, 4_102_444_799] {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t));
        }
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
        assert_eq!(parse_amz_date("20151330T123600Z"), None);
    }
}
