//! Notifying a webhook of a failed or abandoned run: one JSON POST over HTTP/1.1.
//!
//! Written on a plain tokio socket rather than an HTTP client crate: the payload is one
//! small POST, and the receiver is normally an internal relay (alerting, chat bridge) on
//! the agency network. `https://` is refused at load with that advice rather than sent in
//! the clear.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook {url}: no answer within 10 s")]
    Timeout { url: String },
    #[error("webhook {url}: answered `{status_line}`")]
    Status { url: String, status_line: String },
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "`{url}`: https is not supported; point it at an internal relay on http:// (e.g. http://127.0.0.1:9000/hook)"
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("`{url}`: no usable host"));
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}:{}{}", self.host, self.port, self.path)
    }

    /// POSTs `body` and returns the status code; anything but 2xx is an error.
    pub async fn post(&self, body: &serde_json::Value) -> Result<u16, WebhookError> {
        let url = self.url();
        match tokio::time::timeout(TIMEOUT, self.exchange(body)).await {
            Err(_) => Err(WebhookError::Timeout { url }),
            Ok(Err(source)) => Err(WebhookError::Io { url, source }),
            Ok(Ok(status_line)) => {
                let code = status_line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok());
                match code {
                    Some(c) if (200..300).contains(&c) => Ok(c),
                    _ => Err(WebhookError::Status { url, status_line }),
                }
            }
        }
    }

    async fn exchange(&self, body: &serde_json::Value) -> std::io::Result<String> {
        let body = body.to_string();
        let mut stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: xmatch/{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.path,
            self.host,
            self.port,
            env!("CARGO_PKG_VERSION"),
            body.len(),
            body
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        // The status line is all that matters; stop reading once it is in.
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            response.extend_from_slice(&buf[..n]);
            if n == 0 || response.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&response);
        Ok(text.lines().next().unwrap_or("").trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:9000/hooks/xmatch").unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:9000/hooks/xmatch");
        assert_eq!(
            Target::parse("http://alerts.internal").unwrap().url(),
            "http://alerts.internal:80/"
        );
        assert!(
            Target::parse("https://x.example/h")
                .unwrap_err()
                .contains("relay")
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://h:notaport/").is_err());
    }
}
