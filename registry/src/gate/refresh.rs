//! Refresh tokens (the identity token `docker login` stores) traded for
//! access: they stand for their account only while it has the credential
//! generation they were issued against.

use super::checks::{robot_identity, user_identity};
use super::{AuthError, Gate, Passed};
use auth::identity::Subject;
use auth::Identity;
use std::sync::Arc;

impl Gate {
    /// The account of a refresh token, if the token still stands for it: the
    /// account exists with the credential generation the token was issued
    /// against (a password change, a secret rotation, or deleting and making
    /// the account again changes it), and a robot has not expired. Every
    /// refusal reads the same, so it does not tell which accounts exist.
    pub async fn refreshed(&self, token: &str) -> Result<Passed, AuthError> {
        let gate = self;
        let issuer = gate
            .issuer()
            .ok_or(AuthError::Invalid("no token server here"))?;
        let now = auth::now_unix();
        let claims = issuer
            .verifier()
            .verify_refresh(token, now)
            .map_err(|_| AuthError::Invalid("invalid or expired refresh token"))?;
        let revoked = || AuthError::Invalid("refresh token revoked: sign in again");
        let accounts = gate.registry().accounts();
        // (identity, generation, the last change a token must not predate)
        let (id, generation, changed) = match Subject::parse(&claims.subject) {
            // By time too, as before generations: a password changed by a
            // node or CLI of before them kept the generation.
            Ok(Subject::User(name)) => match accounts.user(&name).await? {
                Some(r) => (
                    user_identity(&r),
                    r.credential_gen,
                    r.created_at.max(r.password_changed_at),
                ),
                None => return Err(revoked()),
            },
            Ok(Subject::Robot(name)) => match accounts.robot(&name).await? {
                Some(r) => {
                    // A robot made before generations (generation ''), by time.
                    let changed = if r.credential_gen.is_empty() {
                        r.created_at
                    } else {
                        0
                    };
                    (
                        Identity::Robot(robot_identity(&r)),
                        r.credential_gen,
                        changed,
                    )
                }
                None => return Err(revoked()),
            },
            _ => return Err(revoked()),
        };
        if generation != claims.generation
            || !id.is_active(now)
            || changed.max(0) as u64 > claims.issued_at
        {
            return Err(revoked());
        }
        Ok(Passed {
            id: Arc::new(id),
            generation: generation.into(),
        })
    }
}
