//! File names that suggest a secret: private keys, credentials files,
//! environment files. By name only (contents are never kept), so this is a
//! prompt to look, not a scanner; public certificate bundles are left out.

use super::entry::Kind;

/// Why `path` looks like it holds a secret, if it does.
pub fn looks_secret(path: &str, kind: Kind) -> Option<&'static str> {
    if kind != Kind::File && kind != Kind::Symlink {
        return None;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let parent = path[..path.len() - name.len()].trim_end_matches('/');
    let parent_name = parent.rsplit('/').next().unwrap_or("");
    if [
        "/etc/ssl/certs",
        "/usr/share/ca-certificates",
        "/etc/pki/ca-trust",
    ]
    .iter()
    .any(|d| path.starts_with(d))
    {
        return None;
    }
    match lower.as_str() {
        "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519" | "id_ecdsa_sk" | "id_ed25519_sk" => {
            return Some("an SSH private key")
        }
        ".env" => return Some("an environment file"),
        ".npmrc" | ".pypirc" | ".netrc" | ".git-credentials" | ".pgpass" | ".htpasswd"
        | ".dockercfg" => return Some("a credentials file"),
        "credentials" if parent_name == ".aws" => return Some("AWS credentials"),
        "config.json" if parent_name == ".docker" => return Some("registry credentials"),
        "secrets.yml" | "secrets.yaml" | "secrets.json" | "credentials.json" => {
            return Some("a credentials file")
        }
        "terraform.tfstate" => return Some("Terraform state (holds secrets in clear)"),
        _ => {}
    }
    if lower.starts_with(".env.")
        && !matches!(&lower[5..], "example" | "sample" | "template" | "dist")
    {
        return Some("an environment file");
    }
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "key" => Some("a private key"),
        "pem" if lower.contains("key") || lower.contains("private") => Some("a private key"),
        "p12" | "pfx" | "jks" | "keystore" => Some("a key store"),
        "kdbx" => Some("a password database"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_credentials_by_name() {
        for p in [
            "/root/.ssh/id_rsa",
            "/app/.env",
            "/app/.env.production",
            "/home/u/.aws/credentials",
            "/root/.docker/config.json",
            "/srv/tls/server.key",
            "/srv/tls/private-key.pem",
            "/root/.npmrc",
        ] {
            assert!(looks_secret(p, Kind::File).is_some(), "{p}");
        }
        for p in [
            "/root/.ssh/id_rsa.pub",
            "/app/.env.example",
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/ssl/certs/some.key",
            "/srv/tls/cert.pem",
            "/app/config.json",
            "/usr/lib/credentials",
        ] {
            assert_eq!(looks_secret(p, Kind::File), None, "{p}");
        }
        assert_eq!(looks_secret("/root/.ssh/id_rsa", Kind::Dir), None);
    }
}
