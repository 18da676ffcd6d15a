//! Plugin HTTP egress: the host side of a plugin's `http.fetch`, for one tenant.
//!
//! [`Egress`] applies the tenant's `[tenants.http]` settings to every request:
//!
//! * the scheme is https (http only with `allow_plain_http`);
//! * the host (IDNA-normalised and lower-cased by the `url` crate) matches the allow-list;
//! * the host is resolved here, and the request is refused if *any* address is not public
//!   (loopback, RFC 1918, unique-local, link-local, CGNAT, …, also inside IPv4-mapped and
//!   NAT64 forms) unless `allow_private`; unspecified, multicast, broadcast, documentation,
//!   reserved and cloud-metadata addresses are refused always. IP-literal hosts are checked
//!   the same way. The connection is pinned to the checked addresses, so a second DNS answer
//!   cannot swap in another (DNS rebinding);
//! * redirects are not followed (a 3xx is returned as is), no proxy is used;
//! * hop-by-hop headers and `Host` from the plugin are dropped;
//! * the response body is read up to `max_response_bytes` ([`EgressError::TooLarge`] past it);
//! * the whole fetch (DNS, connect, body) is bounded by the request's timeout, at most the
//!   tenant's `timeout_ms`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use vaani_config::HttpSettings;

/// Largest request body a plugin may send, bytes.
pub const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024;

/// Request headers the plugin may not set: hop-by-hop headers (RFC 9110 §7.6.1), `Host`
/// (the URL decides it) and framing headers reqwest computes itself.
const DROPPED_REQUEST_HEADERS: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The HTTP method of a [`FetchRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl FetchMethod {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            FetchMethod::Get => reqwest::Method::GET,
            FetchMethod::Post => reqwest::Method::POST,
            FetchMethod::Put => reqwest::Method::PUT,
            FetchMethod::Patch => reqwest::Method::PATCH,
            FetchMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One request of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The method.
    pub method: FetchMethod,
    /// Absolute URL (`https://host[:port]/path?query`).
    pub url: String,
    /// Request headers (name, value), in order; hop-by-hop ones and `Host` are dropped.
    pub headers: Vec<(String, String)>,
    /// Request body; empty for none. At most [`MAX_REQUEST_BODY_BYTES`].
    pub body: Vec<u8>,
    /// Limit on the whole fetch, ms; `None` or more than the tenant's `timeout_ms` means
    /// the tenant's `timeout_ms`.
    pub timeout_ms: Option<u64>,
}

/// The answer to a [`FetchRequest`]: any status, including 3xx and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (lower-case name, value); values that are not UTF-8 are converted
    /// lossily.
    pub headers: Vec<(String, String)>,
    /// The body, at most the tenant's `max_response_bytes`.
    pub body: Vec<u8>,
}

/// Why a fetch was refused or failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EgressError {
    /// The URL cannot be parsed or has a part that is not allowed.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A scheme other than https (or http when the tenant allows plain http).
    #[error("scheme {scheme:?} is not allowed (allowed: {allowed})")]
    SchemeNotAllowed {
        /// The URL's scheme.
        scheme: String,
        /// The schemes the tenant allows.
        allowed: &'static str,
    },
    /// The host is not on the tenant's allow-list.
    #[error("host {host:?} is not on the tenant's [tenants.http] allow list")]
    HostNotAllowed {
        /// The normalised host.
        host: String,
    },
    /// The host is (or resolves to) an address plugins may not reach.
    #[error("host {host:?} resolves to {address}, a {class} address, which is not allowed")]
    AddressNotAllowed {
        /// The normalised host.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// What kind of address it is, e.g. `loopback`, `cloud metadata`.
        class: &'static str,
    },
    /// The host name could not be resolved.
    #[error("cannot resolve {host:?}: {message}")]
    Dns {
        /// The normalised host.
        host: String,
        /// The resolver's message.
        message: String,
    },
    /// A header or body the plugin gave cannot be sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The fetch did not finish within its time limit.
    #[error("no complete response within {after_ms} ms")]
    Timeout {
        /// The limit that applied, ms.
        after_ms: u64,
    },
    /// The response body is larger than the tenant allows.
    #[error("response body larger than {limit} bytes")]
    TooLarge {
        /// The tenant's `max_response_bytes`.
        limit: u64,
    },
    /// Connecting, sending or receiving failed.
    #[error("request to {host:?} failed: {message}")]
    Transport {
        /// The normalised host.
        host: String,
        /// What failed.
        message: String,
    },
    /// The HTTP client could not be set up (TLS configuration).
    #[error("HTTP client set-up failed: {0}")]
    Setup(String),
}

/// A tenant's HTTP client for plugin fetches. Cheap to share behind an `Arc`.
pub struct Egress {
    settings: HttpSettings,
    tls: rustls::ClientConfig,
    max_request_bytes: usize,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// A client applying `settings`; prepares TLS (platform roots, `ring`), opens nothing.
    pub fn new(settings: &HttpSettings) -> Result<Egress, EgressError> {
        let tls = vaani_speech::tls_client_config()
            .map_err(|error| EgressError::Setup(error.to_string()))?;
        Ok(Egress::with_tls(settings, tls))
    }

    /// A client applying `settings` over an already prepared TLS configuration (cheap: for a
    /// client made per request, such as a webhook delivery).
    pub fn with_tls(settings: &HttpSettings, tls: rustls::ClientConfig) -> Egress {
        Egress {
            settings: settings.clone(),
            tls,
            max_request_bytes: MAX_REQUEST_BODY_BYTES,
        }
    }

    /// Allows request bodies of up to `bytes` instead of [`MAX_REQUEST_BODY_BYTES`].
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Egress {
        self.max_request_bytes = bytes;
        self
    }

    /// Performs `request` under the tenant's rules; see the module documentation.
    pub async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, EgressError> {
        let limit_ms = request
            .timeout_ms
            .filter(|&ms| ms > 0)
            .map_or(self.settings.timeout_ms, |ms| {
                ms.min(self.settings.timeout_ms)
            });
        match tokio::time::timeout(Duration::from_millis(limit_ms), self.fetch_inner(request)).await
        {
            Ok(result) => result,
            Err(_) => Err(EgressError::Timeout { after_ms: limit_ms }),
        }
    }

    async fn fetch_inner(&self, request: FetchRequest) -> Result<FetchResponse, EgressError> {
        let url = self.check_url(&request.url)?;
        let headers = request_headers(&request.headers)?;
        if request.body.len() > self.max_request_bytes {
            return Err(EgressError::InvalidRequest(format!(
                "body of {} bytes is larger than {}",
                request.body.len(),
                self.max_request_bytes
            )));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses = self.checked_addresses(&url, &host, port).await?;

        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("vaani/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(0);
        if let Some(url::Host::Domain(domain)) = url.host() {
            builder = builder.resolve_to_addrs(domain, &addresses);
        }
        let client = builder
            .build()
            .map_err(|error| EgressError::Setup(describe(&error)))?;
        let transport = |error: reqwest::Error| EgressError::Transport {
            host: host.clone(),
            message: describe(&error),
        };
        let mut builder = client
            .request(request.method.as_reqwest(), url.clone())
            .headers(headers);
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let mut response = builder.send().await.map_err(transport)?;

        let limit = self.settings.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(EgressError::TooLarge { limit });
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(EgressError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchResponse {
            status,
            headers,
            body,
        })
    }

    /// Parses the URL and applies the scheme and allow-list rules.
    fn check_url(&self, raw: &str) -> Result<Url, EgressError> {
        let invalid = |reason: &str| EgressError::InvalidUrl {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(raw.trim()).map_err(|error| invalid(&error.to_string()))?;
        let allowed = if self.settings.allow_plain_http {
            "https, http"
        } else {
            "https"
        };
        match url.scheme() {
            "https" => {}
            "http" if self.settings.allow_plain_http => {}
            scheme => {
                return Err(EgressError::SchemeNotAllowed {
                    scheme: scheme.to_owned(),
                    allowed,
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials in the URL are not allowed"));
        }
        let host = match url.host() {
            Some(url::Host::Domain(domain)) => domain.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(invalid("no host")),
        };
        if !self.settings.allows_host(&host) {
            return Err(EgressError::HostNotAllowed { host });
        }
        Ok(url)
    }

    /// The addresses to connect to: the IP literal, or every address the name resolves
    /// to, each checked against the address rules.
    async fn checked_addresses(
        &self,
        url: &Url,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, EgressError> {
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::net::lookup_host((host, port))
                .await
                .map_err(|error| EgressError::Dns {
                    host: host.to_owned(),
                    message: error.to_string(),
                })?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(EgressError::Dns {
                host: host.to_owned(),
                message: "no addresses".to_owned(),
            });
        }
        for address in &addresses {
            let refused = match classify(address.ip()) {
                AddressClass::Public => None,
                AddressClass::Private(_) if self.settings.allow_private => None,
                AddressClass::Private(class) | AddressClass::Never(class) => Some(class),
            };
            if let Some(class) = refused {
                return Err(EgressError::AddressNotAllowed {
                    host: host.to_owned(),
                    address: address.ip(),
                    class,
                });
            }
        }
        Ok(addresses)
    }
}

/// The plugin's headers minus the dropped ones (and those named in its `Connection`).
fn request_headers(headers: &[(String, String)]) -> Result<HeaderMap, EgressError> {
    let connection_named: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if DROPPED_REQUEST_HEADERS.contains(&lower.as_str()) || connection_named.contains(&lower) {
            continue;
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EgressError::InvalidRequest(format!("invalid header name {name:?}")))?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            EgressError::InvalidRequest(format!("invalid value for header {name:?}"))
        })?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// The error and its sources, e.g. `error sending request: connection refused`.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// How an address may be used by plugin fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddressClass {
    /// A public unicast address.
    Public,
    /// Reachable only with `allow_private`: loopback, private, link-local, CGNAT, …
    Private(&'static str),
    /// Never reachable: unspecified, multicast, broadcast, documentation, reserved,
    /// cloud metadata.
    Never(&'static str),
}

/// Classifies `ip`; IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4)
/// are classified as the IPv4 address.
fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::{Never, Private, Public};
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        // Cloud metadata services: AWS/GCP/Azure/OpenStack, AWS ECS, Alibaba.
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => Never("cloud metadata"),
        (0, ..) => Never("unspecified"),
        (255, 255, 255, 255) => Never("broadcast"),
        (224..=239, ..) => Never("multicast"),
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => Never("documentation"),
        (240..=255, ..) => Never("reserved"),
        (127, ..) => Private("loopback"),
        (10, ..) | (172, 16..=31, ..) | (192, 168, ..) => Private("private"),
        (169, 254, ..) => Private("link-local"),
        (100, 64..=127, ..) => Private("carrier-grade NAT"),
        (192, 0, 0, _) => Private("IETF protocol assignment"),
        (198, 18..=19, ..) => Private("benchmarking"),
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::{Never, Private, Public};
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if ip.is_unspecified() {
        return Never("unspecified");
    }
    if ip.is_loopback() {
        return Private("loopback");
    }
    // Deprecated IPv4-compatible ::a.b.c.d.
    if segments[..6] == [0; 6] {
        return classify_v4(ip_v4_from(segments[6], segments[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(ip_v4_from(segments[6], segments[7]));
    }
    if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        return Private("NAT64 local-use");
    }
    // 6to4 2002:a.b.c.d::/48.
    if segments[0] == 0x2002 {
        return classify_v4(ip_v4_from(segments[1], segments[2]));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Never("cloud metadata");
    }
    match segments[0] {
        s if s & 0xff00 == 0xff00 => Never("multicast"),
        s if s & 0xfe00 == 0xfc00 => Private("unique local"),
        s if s & 0xffc0 == 0xfe80 => Private("link-local"),
        s if s & 0xffc0 == 0xfec0 => Private("site-local"),
        0x2001 if segments[1] == 0x0db8 => Never("documentation"),
        s if s & 0xfff0 == 0x3ff0 => Never("documentation"),
        // Teredo 2001::/32 tunnels to an address we cannot check.
        0x2001 if segments[1] == 0 => Never("reserved"),
        0x0100 if segments[1..4] == [0, 0, 0] => Never("discard-only"),
        _ => Public,
    }
}

fn ip_v4_from(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;

    use super::*;

    fn settings(allow: &[&str]) -> HttpSettings {
        HttpSettings {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            allow_private: true,
            allow_plain_http: true,
            timeout_ms: 2_000,
            max_response_bytes: 1024,
        }
    }

    fn get_request(url: String) -> FetchRequest {
        FetchRequest {
            method: FetchMethod::Get,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
        }
    }

    /// A local server: `/hello`, `/echo` (method, host header, body), `/redirect`,
    /// `/big` (2 KiB), `/slow` (answers after 3 s).
    async fn server() -> SocketAddr {
        let app =
            Router::new()
                .route("/hello", get(|| async { "hello" }))
                .route(
                    "/echo",
                    axum::routing::any(
                        |method: axum::http::Method,
                         headers: axum::http::HeaderMap,
                         body: String| async move {
                            let host = headers
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let custom = headers
                                .get("x-custom")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let upgrade = headers.contains_key("upgrade");
                            format!(
                                "{method} host={host} custom={custom} upgrade={upgrade} body={body}"
                            )
                        },
                    ),
                )
                .route(
                    "/redirect",
                    get(|| async {
                        (
                            StatusCode::FOUND,
                            [("location", "http://169.254.169.254/latest/meta-data")],
                            "moved",
                        )
                            .into_response()
                    }),
                )
                .route("/big", get(|| async { vec![b'x'; 2048] }))
                .route(
                    "/big-chunked",
                    get(|| async {
                        let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 256]));
                        axum::body::Body::from_stream(futures_util::stream::iter(chunks))
                    }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        "late"
                    }),
                );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        address
    }

    #[tokio::test]
    async fn allowed_fetch_works() {
        let address = server().await;
        let egress = Egress::new(&settings(&["127.0.0.1"])).unwrap();
        let response = egress
            .fetch(get_request(format!("http://{address}/hello")))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
        assert!(
            response
                .headers
                .iter()
                .any(|(name, value)| name == "content-length" && value == "5")
        );
    }

    #[tokio::test]
    async fn post_sends_body_and_drops_host_and_hop_by_hop_headers() {
        let address = server().await;
        let egress = Egress::new(&settings(&["127.0.0.1"])).unwrap();
        let response = egress
            .fetch(FetchRequest {
                method: FetchMethod::Post,
                url: format!("http://{address}/echo"),
                headers: vec![
                    ("Host".into(), "evil.example".into()),
                    ("Upgrade".into(), "websocket".into()),
                    ("X-Custom".into(), "yes".into()),
                ],
                body: b"order=1".to_vec(),
                timeout_ms: Some(1_000),
            })
            .await
            .unwrap();
        let text = String::from_utf8(response.body).unwrap();
        assert_eq!(
            text,
            format!("POST host={address} custom=yes upgrade=false body=order=1")
        );
    }

    #[tokio::test]
    async fn loopback_refused_without_allow_private() {
        let address = server().await;
        let mut settings = settings(&["127.0.0.1", "localhost"]);
        settings.allow_private = false;
        let egress = Egress::new(&settings).unwrap();
        let error = egress
            .fetch(get_request(format!("http://{address}/hello")))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                EgressError::AddressNotAllowed {
                    class: "loopback",
                    ..
                }
            ),
            "{error}"
        );
        // A name that resolves to loopback is refused the same way.
        let error = egress
            .fetch(get_request(format!(
                "http://localhost:{}/hello",
                address.port()
            )))
            .await
            .unwrap_err();
        assert!(
            matches!(error, EgressError::AddressNotAllowed { ref host, .. } if host == "localhost"),
            "{error}"
        );
        // IPv4-mapped IPv6 loopback too.
        let egress = Egress::new(&{
            let mut s = settings.clone();
            s.allow = vec!["::ffff:127.0.0.1".into()];
            s
        })
        .unwrap();
        let error = egress
            .fetch(get_request("http://[::ffff:127.0.0.1]:1/".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                EgressError::AddressNotAllowed {
                    class: "loopback",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn metadata_address_refused_even_with_allow_private() {
        let egress = Egress::new(&settings(&["169.254.169.254"])).unwrap();
        let error = egress
            .fetch(get_request(
                "http://169.254.169.254/latest/meta-data".into(),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            EgressError::AddressNotAllowed {
                host: "169.254.169.254".into(),
                address: "169.254.169.254".parse().unwrap(),
                class: "cloud metadata",
            }
        );
    }

    #[tokio::test]
    async fn host_not_on_allow_list_refused() {
        let egress = Egress::new(&settings(&["api.example.com", "*.shop.in"])).unwrap();
        for url in [
            "https://evil.example.com/",
            "https://shop.in/",
            "https://api.example.com.evil.net/",
            "https://127.0.0.1/",
        ] {
            let error = egress.fetch(get_request(url.into())).await.unwrap_err();
            assert!(
                matches!(error, EgressError::HostNotAllowed { .. }),
                "{url}: {error}"
            );
        }
        // Matching is on the normalised host: upper case and IDNA forms.
        let egress = Egress::new(&settings(&["xn--bcher-kva.example"])).unwrap();
        let checked = egress.check_url("https://BÜCHER.example/").unwrap();
        assert_eq!(checked.host_str(), Some("xn--bcher-kva.example"));
        assert!(matches!(
            egress.check_url("https://user:pw@xn--bcher-kva.example/"),
            Err(EgressError::InvalidUrl { .. })
        ));
        assert!(matches!(
            egress.check_url("not a url"),
            Err(EgressError::InvalidUrl { .. })
        ));
    }

    #[tokio::test]
    async fn plain_http_refused_unless_allowed() {
        let address = server().await;
        let mut settings = settings(&["127.0.0.1"]);
        settings.allow_plain_http = false;
        let egress = Egress::new(&settings).unwrap();
        let error = egress
            .fetch(get_request(format!("http://{address}/hello")))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            EgressError::SchemeNotAllowed {
                scheme: "http".into(),
                allowed: "https"
            }
        );
        let error = egress
            .fetch(get_request("ftp://127.0.0.1/x".into()))
            .await
            .unwrap_err();
        assert!(
            matches!(error, EgressError::SchemeNotAllowed { .. }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn redirect_is_returned_not_followed() {
        let address = server().await;
        let egress = Egress::new(&settings(&["127.0.0.1"])).unwrap();
        let response = egress
            .fetch(get_request(format!("http://{address}/redirect")))
            .await
            .unwrap();
        assert_eq!(response.status, 302);
        assert!(
            response
                .headers
                .iter()
                .any(|(name, value)| name == "location"
                    && value == "http://169.254.169.254/latest/meta-data")
        );
        assert_eq!(response.body, b"moved");
    }

    #[tokio::test]
    async fn oversized_body_is_too_large() {
        let address = server().await;
        let egress = Egress::new(&settings(&["127.0.0.1"])).unwrap();
        for path in ["big", "big-chunked"] {
            let error = egress
                .fetch(get_request(format!("http://{address}/{path}")))
                .await
                .unwrap_err();
            assert_eq!(error, EgressError::TooLarge { limit: 1024 }, "{path}");
        }
    }

    #[tokio::test]
    async fn slow_server_times_out_within_the_tenant_limit() {
        let address = server().await;
        let egress = Egress::new(&settings(&["127.0.0.1"])).unwrap();
        let mut request = get_request(format!("http://{address}/slow"));
        request.timeout_ms = Some(200);
        let started = std::time::Instant::now();
        let error = egress.fetch(request.clone()).await.unwrap_err();
        assert_eq!(error, EgressError::Timeout { after_ms: 200 });
        assert!(started.elapsed() < Duration::from_secs(2));
        // A plugin cannot ask for more than the tenant's limit.
        request.timeout_ms = Some(60_000);
        let error = egress.fetch(request).await.unwrap_err();
        assert_eq!(error, EgressError::Timeout { after_ms: 2_000 });
    }

    #[test]
    fn address_classes() {
        let class = |s: &str| classify(s.parse().unwrap());
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(public), AddressClass::Public, "{public}");
        }
        for (private, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:101::1", "private"),
        ] {
            assert_eq!(class(private), AddressClass::Private(kind), "{private}");
        }
        for (never, kind) in [
            ("169.254.169.254", "cloud metadata"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("2001:db8::1", "documentation"),
            ("240.0.0.1", "reserved"),
        ] {
            assert_eq!(class(never), AddressClass::Never(kind), "{never}");
        }
        assert_eq!(class("172.32.0.1"), AddressClass::Public);
        assert_eq!(class("100.128.0.1"), AddressClass::Public);
    }

    #[test]
    fn dropped_headers_include_those_named_by_connection() {
        let map = request_headers(&[
            ("Connection".into(), "close, X-Secret-Hop".into()),
            ("X-Secret-Hop".into(), "1".into()),
            ("Authorization".into(), "Bearer t".into()),
            ("Transfer-Encoding".into(), "chunked".into()),
        ])
        .unwrap();
        assert_eq!(map.len(), 1);
        assert!(map.contains_key("authorization"));
        assert!(matches!(
            request_headers(&[("bad name".into(), "v".into())]),
            Err(EgressError::InvalidRequest(_))
        ));
    }
}
