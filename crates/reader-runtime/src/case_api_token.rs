//! The Case API bearer token, re-read from `case_api.token_file` while the reader runs
//! (`docs/design.md`, "Health and rotation").
//!
//! A rotated token (a Kubernetes Secret's mounted file is swapped in place) is sent from the next
//! call on, at most [`REREAD_INTERVAL`] after the file changed: calls refused with the old token
//! in between are retried (UNAUTHENTICATED is retry class), so a rotation costs a few retries,
//! never a crash loop. A file that cannot be read, is empty or holds no valid header value keeps
//! the previous token, with an error line and `config_reload_failed{what=case_api_token}`. The
//! token itself is never logged.

use std::path::PathBuf;
use std::time::Duration;

use case_api::BearerAuth;
use tokio_util::sync::CancellationToken;

/// How often the token file is read.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(5);

/// What one read of the file found.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// The token sent already.
    Unchanged,
    /// A new token, now sent.
    Replaced,
    /// Kept the previous token: the file is unusable.
    Refused(String),
}

/// Re-reads `path` every [`REREAD_INTERVAL`] until `stop`, replacing `auth`'s token when the
/// file's content changes. `flavor` tags the failure counter.
pub async fn watch(path: PathBuf, auth: BearerAuth, flavor: &'static str, stop: CancellationToken) {
    let mut current = read_token(&path).await.ok();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REREAD_INTERVAL) => {}
        }
        match reread(&path, &auth, &mut current).await {
            Read::Unchanged => failing = false,
            Read::Replaced => {
                failing = false;
                tracing::info!(file = %path.display(), "case api token reloaded");
            }
            Read::Refused(why) => {
                metrics::counter!("dd.case_third_party_reader.config_reload_failed",
                    "flavor" => flavor, "what" => "case_api_token")
                .increment(1);
                // Once per failing spell, not every interval.
                if !failing {
                    tracing::error!(file = %path.display(), reason = %why, "case api token file unusable; keeping the previous token");
                }
                failing = true;
            }
        }
    }
}

async fn read_token(path: &PathBuf) -> Result<String, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err("it is empty".into());
    }
    Ok(token.to_owned())
}

async fn reread(path: &PathBuf, auth: &BearerAuth, current: &mut Option<String>) -> Read {
    let token = match read_token(path).await {
        Ok(token) => token,
        Err(why) => return Read::Refused(why),
    };
    if current.as_deref() == Some(token.as_str()) {
        return Read::Unchanged;
    }
    if auth.replace(&token).is_err() {
        return Read::Refused("the token is not a valid header value".into());
    }
    *current = Some(token);
    Read::Replaced
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tonic::Request;
    use tonic::service::Interceptor;

    use super::*;

    fn sent(auth: &BearerAuth) -> Option<String> {
        let request = auth.clone().call(Request::new(())).unwrap();
        request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn a_changed_file_replaces_the_token_and_a_bad_one_keeps_it() {
        let dir = std::env::temp_dir().join(format!("case-api-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "first\n").unwrap();
        let auth = BearerAuth::new(Some("first")).unwrap();
        let mut current = read_token(&path).await.ok();
        assert_eq!(reread(&path, &auth, &mut current).await, Read::Unchanged);

        std::fs::write(&path, "second\n").unwrap();
        assert_eq!(reread(&path, &auth, &mut current).await, Read::Replaced);
        assert_eq!(sent(&auth).as_deref(), Some("Bearer second"));

        for bad in ["\n", "bad\u{1}token"] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(
                reread(&path, &auth, &mut current).await,
                Read::Refused(_)
            ));
            assert_eq!(sent(&auth).as_deref(), Some("Bearer second"), "{bad:?}");
        }
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            reread(&path, &auth, &mut current).await,
            Read::Refused(_)
        ));
        assert_eq!(sent(&auth).as_deref(), Some("Bearer second"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
