//! Inbound SIP messages: parsing with `rsip` into the fields the endpoint works with, recovery of
//! enough of a malformed request to answer it `400`, and building outbound messages.

use std::net::{IpAddr, SocketAddr};

use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::{Header, Headers, Method, Param, StatusCode};

use crate::transport::Transport;

/// Largest message the endpoint looks at; anything bigger is dropped.
pub(crate) const MAX_MESSAGE_SIZE: usize = 65_535;

/// Default SIP port when a URI or Via has none.
pub(crate) const DEFAULT_SIP_PORT: u16 = 5060;
/// Default port of a `sips:` URI or a `;transport=tls` one without a port (RFC 3261 §19.1.2).
pub(crate) const DEFAULT_SIPS_PORT: u16 = 5061;

/// Methods we implement, as advertised in `Allow`.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY";

/// Option tags we support, as advertised in `Supported`.
pub(crate) const SUPPORTED: &str = "timer";

/// Headers that every response copies from its request (RFC 3261 §8.2.6.2), plus where it goes.
#[derive(Debug, Clone)]
pub(crate) struct ReplyContext {
    /// Via values, top first, each a single Via; the top one already carries `received`/`rport`.
    pub vias: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub to_has_tag: bool,
    pub call_id: Option<String>,
    pub cseq: Option<String>,
    /// Where responses go (RFC 3261 §18.2.2 with RFC 3581).
    pub target: SocketAddr,
}

/// A parsed, validated inbound request.
#[derive(Debug, Clone)]
pub(crate) struct InboundRequest {
    pub method: Method,
    pub uri: rsip::Uri,
    pub reply: ReplyContext,
    /// Branch of the top Via, if any.
    pub branch: Option<String>,
    /// sent-by of the top Via, as written (`host:port`).
    pub sent_by: String,
    pub call_id: String,
    pub cseq: u32,
    pub from: rsip::typed::From,
    pub from_tag: Option<String>,
    pub to: rsip::typed::To,
    pub to_tag: Option<String>,
    /// Raw From and To values (To without our tag), for building in-dialog requests.
    pub from_raw: String,
    pub to_raw: String,
    pub contact: Option<rsip::Uri>,
    /// Record-Route entries in the order received (each a single name-addr).
    pub record_route: Vec<String>,
    /// Option tags from `Require`.
    pub require: Vec<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// All headers, names as received.
    pub headers: Vec<(String, String)>,
}

/// A parsed inbound response (to our INVITEs, CANCELs, BYEs and UPDATEs).
#[derive(Debug, Clone)]
pub(crate) struct InboundResponse {
    pub status: u16,
    /// The reason phrase, as received (printable ASCII only).
    pub reason: String,
    pub branch: Option<String>,
    pub cseq_method: Method,
    pub cseq: u32,
    pub call_id: String,
    /// The raw To value (with the peer's tag) and that tag.
    pub to_raw: String,
    pub to_tag: Option<String>,
    /// The first Contact URI, if parseable.
    pub contact: Option<rsip::Uri>,
    /// Record-Route entries in the order received.
    pub record_route: Vec<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// All headers, names as received.
    pub headers: Vec<(String, String)>,
}

/// Outcome of looking at one inbound message.
#[derive(Debug)]
pub(crate) enum Parsed {
    Request(Box<InboundRequest>),
    Response(InboundResponse),
    /// A request we cannot process but can answer (stateless) with this status and reason.
    Unprocessable {
        method: String,
        reply: ReplyContext,
        status: u16,
        reason: String,
    },
    /// Nothing we can answer: drop silently.
    Unusable,
}

/// Parse one complete message (one datagram, or one framed stream message).
pub(crate) fn parse_message(data: &[u8], source: SocketAddr, transport: Transport) -> Parsed {
    if data.len() > MAX_MESSAGE_SIZE || data.is_empty() {
        return Parsed::Unusable;
    }
    if data.starts_with(b"SIP/") {
        return match rsip::SipMessage::try_from(data) {
            Ok(rsip::SipMessage::Response(response)) => inspect_response(&response, data),
            _ => Parsed::Unusable,
        };
    }
    match rsip::SipMessage::try_from(data) {
        Ok(rsip::SipMessage::Request(request)) => inspect_request(request, data, source, transport),
        Ok(rsip::SipMessage::Response(_)) => Parsed::Unusable,
        Err(_) => recover_malformed(data, source, transport),
    }
}

/// Header lines of a message, names as received (the message has already been accepted by rsip,
/// or we are recovering; either way a line is `name: value`).
fn raw_header_lines(data: &[u8]) -> (Vec<(String, String)>, bool) {
    let head_end = find(data, b"\r\n\r\n").unwrap_or(data.len());
    let head = &data[..head_end];
    let text = String::from_utf8_lossy(head);
    let mut headers = Vec::new();
    let mut malformed_line = false;
    for line in text.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation (obsolete): rsip does not support it; treat as malformed.
            malformed_line = true;
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                headers.push((name.trim().to_string(), value.trim().to_string()))
            }
            _ => malformed_line = true,
        }
    }
    (headers, malformed_line)
}

/// Full name of a header given its name or compact form (RFC 3261 §7.3.3).
fn canonical_name(name: &str) -> &str {
    match name {
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "e" | "E" => "Content-Encoding",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "f" | "F" => "From",
        "s" | "S" => "Subject",
        "k" | "K" => "Supported",
        "t" | "T" => "To",
        "v" | "V" => "Via",
        "x" | "X" => "Session-Expires",
        other => other,
    }
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| canonical_name(n).eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub(crate) fn first_header<'a>(headers: &'a [(String, String)], name: &'a str) -> Option<&'a str> {
    header_values(headers, name).next()
}

/// Split a comma-separated header value list, respecting `<...>` and quoted strings.
pub(crate) fn split_header_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth_angle = false;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, ch) in value.char_indices() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_quotes = false;
            }
            continue;
        }
        match ch {
            '"' => in_quotes = true,
            '<' => depth_angle = true,
            '>' => depth_angle = false,
            ',' if !depth_angle => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    parts.push(part);
                }
                start = i + ch.len_utf8();
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

fn all_vias(headers: &[(String, String)]) -> Vec<String> {
    header_values(headers, "Via")
        .flat_map(split_header_list)
        .map(str::to_string)
        .collect()
}

/// Parsed top Via: what we need to route a response.
struct TopVia {
    typed: rsip::typed::Via,
    sent_by: String,
    has_rport: bool,
}

fn parse_top_via(raw: &str) -> Option<TopVia> {
    let typed = rsip::headers::Via::new(raw).typed().ok()?;
    let has_rport = typed.params.iter().any(|p| match p {
        Param::Other(name, _) => name.to_string().eq_ignore_ascii_case("rport"),
        _ => false,
    });
    let sent_by = typed.uri.host_with_port.to_string();
    Some(TopVia {
        typed,
        sent_by,
        has_rport,
    })
}

fn param_name(param: &str) -> &str {
    param.split('=').next().unwrap_or("").trim()
}

/// Stamp the top Via with `received`/`rport` (RFC 3261 §18.2.1, RFC 3581 §4) and decide where
/// responses go.
fn stamp_top_via(
    raw: &str,
    via: &TopVia,
    source: SocketAddr,
    transport: Transport,
) -> (String, SocketAddr) {
    let via_ip = match &via.typed.uri.host_with_port.host {
        rsip::Host::IpAddr(ip) => Some(*ip),
        rsip::Host::Domain(_) => None,
    };
    let add_received = via.has_rport || via_ip != Some(source.ip());
    let mut parts = raw.split(';');
    let mut stamped = parts.next().unwrap_or("").trim_end().to_string();
    for param in parts {
        let name = param_name(param);
        if name.eq_ignore_ascii_case("received") && add_received {
            continue;
        }
        if name.eq_ignore_ascii_case("rport") && via.has_rport {
            stamped.push_str(&format!(";rport={}", source.port()));
            continue;
        }
        stamped.push(';');
        stamped.push_str(param.trim());
    }
    if add_received {
        stamped.push_str(&format!(";received={}", source.ip()));
    }
    let target = match transport {
        Transport::Tcp | Transport::Tls => source,
        Transport::Udp if via.has_rport => source,
        Transport::Udp => {
            let port = via
                .typed
                .uri
                .host_with_port
                .port
                .as_ref()
                .map(|p| *p.value())
                .unwrap_or(DEFAULT_SIP_PORT);
            SocketAddr::new(source.ip(), port)
        }
    };
    (stamped, target)
}

fn tag_of(params: &[Param]) -> Option<String> {
    params.iter().find_map(|p| match p {
        Param::Tag(tag) => Some(tag.value().to_string()),
        _ => None,
    })
}

fn has_tag_param(raw: &str) -> bool {
    // Header parameters follow the closing '>' (or the URI itself when there are no brackets).
    let params = match raw.rfind('>') {
        Some(i) => &raw[i..],
        None => raw,
    };
    params
        .split(';')
        .skip(1)
        .any(|p| param_name(p).eq_ignore_ascii_case("tag"))
}

fn inspect_response(response: &rsip::Response, data: &[u8]) -> Parsed {
    let (headers, _) = raw_header_lines(data);
    let branch = first_header(&headers, "Via")
        .and_then(|v| split_header_list(v).first().copied())
        .and_then(parse_top_via)
        .and_then(|via| via.typed.branch().map(|b| b.value().to_string()));
    let cseq =
        first_header(&headers, "CSeq").and_then(|v| rsip::headers::CSeq::new(v).typed().ok());
    let Some(cseq) = cseq else {
        return Parsed::Unusable;
    };
    if find(data, b"\r\n\r\n").is_none() {
        // Cut off inside the header block: whatever we read may be missing what matters.
        return Parsed::Unusable;
    }
    let status_line_end = find(data, b"\r\n").unwrap_or(data.len());
    let reason = std::str::from_utf8(&data[..status_line_end])
        .ok()
        .and_then(|line| line.splitn(3, ' ').nth(2))
        .map(clean_reason)
        .unwrap_or_else(|| default_reason(response.status_code.code()).to_string());
    let to_raw = first_header(&headers, "To").unwrap_or("").to_string();
    let to_tag = rsip::headers::To::new(to_raw.clone())
        .typed()
        .ok()
        .and_then(|to| tag_of(&to.params));
    let contact = first_header(&headers, "Contact")
        .and_then(|v| split_header_list(v).first().copied())
        .and_then(|first| rsip::headers::Contact::new(first).typed().ok())
        .map(|c| c.uri);
    let record_route = header_values(&headers, "Record-Route")
        .flat_map(split_header_list)
        .map(str::to_string)
        .collect();
    let mut body = response.body.clone();
    if let Some(value) = first_header(&headers, "Content-Length") {
        // A response shorter than it says was cut off (RFC 3261 §18.3): drop it.
        match value.trim().parse::<usize>() {
            Ok(len) if len <= body.len() => body.truncate(len),
            _ => return Parsed::Unusable,
        }
    }
    Parsed::Response(InboundResponse {
        status: response.status_code.code(),
        reason,
        branch,
        cseq_method: cseq.method,
        cseq: cseq.seq,
        call_id: first_header(&headers, "Call-ID").unwrap_or("").to_string(),
        to_raw,
        to_tag,
        contact,
        record_route,
        content_type: first_header(&headers, "Content-Type").map(str::to_string),
        body,
        headers,
    })
}

/// Builds the reply context from recovered headers; `None` if there is no usable Via.
fn reply_context(
    headers: &[(String, String)],
    source: SocketAddr,
    transport: Transport,
) -> Option<(ReplyContext, TopVia)> {
    let mut vias = all_vias(headers);
    let top_raw = vias.first()?.clone();
    let top = parse_top_via(&top_raw)?;
    let (stamped, target) = stamp_top_via(&top_raw, &top, source, transport);
    if let Some(first) = vias.first_mut() {
        *first = stamped;
    }
    let to = first_header(headers, "To").map(str::to_string);
    let to_has_tag = to.as_deref().map(has_tag_param).unwrap_or(false);
    Some((
        ReplyContext {
            vias,
            from: first_header(headers, "From").map(str::to_string),
            to,
            to_has_tag,
            call_id: first_header(headers, "Call-ID").map(str::to_string),
            cseq: first_header(headers, "CSeq").map(str::to_string),
            target,
        },
        top,
    ))
}

fn unprocessable(method: &str, reply: ReplyContext, status: u16, reason: &str) -> Parsed {
    Parsed::Unprocessable {
        method: method.to_string(),
        reply,
        status,
        reason: reason.to_string(),
    }
}

/// Checks shared by parsed and recovered requests: the mandatory headers (RFC 3261 §8.1.1).
fn missing_essential(reply: &ReplyContext) -> Option<&'static str> {
    if reply.call_id.as_deref().is_none_or(str::is_empty) {
        return Some("Missing Call-ID");
    }
    if reply.cseq.is_none() {
        return Some("Missing CSeq");
    }
    if reply.from.is_none() {
        return Some("Missing From");
    }
    if reply.to.is_none() {
        return Some("Missing To");
    }
    None
}

fn inspect_request(
    request: rsip::Request,
    data: &[u8],
    source: SocketAddr,
    transport: Transport,
) -> Parsed {
    let method = request.method;
    let method_name = method.to_string();
    let (headers, _) = raw_header_lines(data);
    let Some((reply, top)) = reply_context(&headers, source, transport) else {
        return Parsed::Unusable;
    };
    if let Some(reason) = missing_essential(&reply) {
        return unprocessable(&method_name, reply, 400, reason);
    }
    let call_id = reply.call_id.clone().unwrap_or_default();
    let Some(cseq) = reply
        .cseq
        .as_deref()
        .and_then(|v| rsip::headers::CSeq::new(v).typed().ok())
    else {
        return unprocessable(&method_name, reply, 400, "Malformed CSeq");
    };
    if cseq.method != method {
        return unprocessable(&method_name, reply, 400, "CSeq Method Mismatch");
    }
    let from_raw = reply.from.clone().unwrap_or_default();
    let Ok(from) = rsip::headers::From::new(from_raw.clone()).typed() else {
        return unprocessable(&method_name, reply, 400, "Malformed From");
    };
    let to_raw = reply.to.clone().unwrap_or_default();
    let Ok(to) = rsip::headers::To::new(to_raw.clone()).typed() else {
        return unprocessable(&method_name, reply, 400, "Malformed To");
    };
    let contact = match first_header(&headers, "Contact") {
        Some(value) => {
            let first = split_header_list(value).first().copied().unwrap_or("");
            match rsip::headers::Contact::new(first).typed() {
                Ok(contact) => Some(contact.uri),
                Err(_) if method == Method::Invite => {
                    return unprocessable(&method_name, reply, 400, "Malformed Contact");
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    if method == Method::Invite && contact.is_none() {
        return unprocessable(&method_name, reply, 400, "Missing Contact");
    }
    if first_header(&headers, "Max-Forwards").is_some_and(|v| v.trim().parse::<u32>().is_err()) {
        return unprocessable(&method_name, reply, 400, "Malformed Max-Forwards");
    }
    let mut body = request.body;
    match first_header(&headers, "Content-Length") {
        Some(v) => match v.trim().parse::<usize>() {
            Ok(len) if len <= body.len() => body.truncate(len),
            Ok(_) => return unprocessable(&method_name, reply, 400, "Content-Length Mismatch"),
            Err(_) => return unprocessable(&method_name, reply, 400, "Malformed Content-Length"),
        },
        None if transport.is_reliable() => body.clear(),
        None => {}
    }
    let record_route = header_values(&headers, "Record-Route")
        .flat_map(split_header_list)
        .map(str::to_string)
        .collect();
    let require = header_values(&headers, "Require")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let content_type = first_header(&headers, "Content-Type").map(str::to_string);
    let branch = top.typed.branch().map(|b| b.value().to_string());
    let from_tag = tag_of(&from.params);
    let to_tag = tag_of(&to.params);
    Parsed::Request(Box::new(InboundRequest {
        method,
        uri: request.uri,
        branch,
        sent_by: top.sent_by,
        call_id,
        cseq: cseq.seq,
        from,
        from_tag,
        to,
        to_tag,
        from_raw,
        to_raw,
        contact,
        record_route,
        require,
        content_type,
        body,
        headers,
        reply,
    }))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// rsip rejected the message: recover the request line and the headers needed to answer it.
fn recover_malformed(data: &[u8], source: SocketAddr, transport: Transport) -> Parsed {
    let line_end = find(data, b"\n").unwrap_or(data.len());
    let Ok(request_line) = std::str::from_utf8(&data[..line_end]) else {
        return Parsed::Unusable;
    };
    let request_line = request_line.trim_end_matches('\r');
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Unusable;
    };
    if !is_token(method) || uri.is_empty() || version != "SIP/2.0" {
        return Parsed::Unusable;
    }
    if method.eq_ignore_ascii_case("ACK") {
        // Never answer an ACK.
        return Parsed::Unusable;
    }
    let (headers, malformed_line) = raw_header_lines(data);
    let Some((reply, _)) = reply_context(&headers, source, transport) else {
        return Parsed::Unusable;
    };
    if let Some(reason) = missing_essential(&reply) {
        return unprocessable(method, reply, 400, reason);
    }
    if method.parse::<Method>().is_err() {
        return unprocessable(method, reply, 405, "Method Not Allowed");
    }
    let head_end = find(data, b"\r\n\r\n").unwrap_or(data.len());
    let reason = if std::str::from_utf8(&data[..head_end]).is_err() {
        "Invalid UTF-8 In Header"
    } else if rsip::Uri::try_from(uri).is_err() {
        "Malformed Request-URI"
    } else if malformed_line {
        "Malformed Header"
    } else if find(data, b"\r\n\r\n").is_none() {
        "Missing Header Terminator"
    } else {
        "Malformed Message"
    };
    unprocessable(method, reply, 400, reason)
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Keep a reason phrase to printable ASCII (it goes on the status line).
fn clean_reason(reason: &str) -> String {
    let cleaned: String = reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    if cleaned.trim().is_empty() {
        "Unknown".to_string()
    } else {
        cleaned
    }
}

/// Standard reason phrase for the status codes we send.
pub(crate) fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A header value safe to put on one line (no CR/LF/NUL from a peer survives into our output).
fn one_line(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// Everything a response needs beyond the copied request headers.
#[derive(Debug, Default)]
pub(crate) struct ResponseExtras<'a> {
    /// Our To-tag (added unless the To already has one, and never on 100).
    pub to_tag: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub record_route: &'a [String],
    /// Additional `(name, value)` headers.
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Serialise a response to a request (rsip does the formatting).
pub(crate) fn build_response(
    reply: &ReplyContext,
    status: u16,
    reason: &str,
    server: &str,
    extras: ResponseExtras<'_>,
) -> Vec<u8> {
    let mut headers = Headers::default();
    for via in &reply.vias {
        headers.push(Header::Via(rsip::headers::Via::new(one_line(via))));
    }
    for rr in extras.record_route {
        headers.push(Header::RecordRoute(rsip::headers::RecordRoute::new(
            one_line(rr),
        )));
    }
    if let Some(from) = &reply.from {
        headers.push(Header::From(rsip::headers::From::new(one_line(from))));
    }
    if let Some(to) = &reply.to {
        let to = match extras.to_tag {
            Some(tag) if status > 100 && !reply.to_has_tag => format!("{to};tag={tag}"),
            _ => to.clone(),
        };
        headers.push(Header::To(rsip::headers::To::new(one_line(&to))));
    }
    if let Some(call_id) = &reply.call_id {
        headers.push(Header::CallId(rsip::headers::CallId::new(one_line(
            call_id,
        ))));
    }
    if let Some(cseq) = &reply.cseq {
        headers.push(Header::CSeq(rsip::headers::CSeq::new(one_line(cseq))));
    }
    if let Some(contact) = extras.contact {
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
    }
    for (name, value) in extras.headers {
        headers.push(Header::Other(name.to_string(), one_line(&value)));
    }
    headers.push(Header::Server(rsip::headers::Server::new(server)));
    if let Some(content_type) = extras.content_type {
        headers.push(Header::ContentType(rsip::headers::ContentType::new(
            content_type,
        )));
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        extras.body.len().to_string(),
    )));
    let response = rsip::Response {
        status_code: StatusCode::Other(status, clean_reason(reason)),
        version: rsip::Version::V2,
        headers,
        body: extras.body.to_vec(),
    };
    response.to_string().into_bytes()
}

/// Fields of a request we send (INVITE, ACK, CANCEL, BYE, UPDATE).
#[derive(Debug)]
pub(crate) struct OutboundRequest<'a> {
    pub method: Method,
    pub request_uri: &'a rsip::Uri,
    pub via: String,
    pub routes: &'a [String],
    pub from: String,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// Our Contact; `None` leaves it out (CANCEL, ACK of a non-2xx).
    pub contact: Option<&'a str>,
    pub user_agent: &'a str,
    /// Additional `(name, value)` headers.
    pub headers: Vec<(&'static str, String)>,
    /// Headers supplied by the application (e.g. `X-` headers of a placed call).
    pub extra_headers: &'a [(String, String)],
    /// `Content-Type` of the body, if any.
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Whether `name` is a header name an application may add to a request we build: a token,
/// and none of the headers the endpoint writes itself.
pub(crate) fn is_settable_header(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "via",
        "v",
        "max-forwards",
        "route",
        "from",
        "f",
        "to",
        "t",
        "call-id",
        "i",
        "cseq",
        "contact",
        "m",
        "content-length",
        "l",
        "content-type",
        "c",
        "authorization",
        "proxy-authorization",
        "record-route",
    ];
    is_token(name) && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Serialise a request we originate.
pub(crate) fn build_request(req: &OutboundRequest<'_>) -> Vec<u8> {
    let mut headers = Headers::default();
    headers.push(Header::Via(rsip::headers::Via::new(req.via.clone())));
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    for route in req.routes {
        headers.push(Header::Route(rsip::headers::Route::new(one_line(route))));
    }
    headers.push(Header::From(rsip::headers::From::new(one_line(&req.from))));
    headers.push(Header::To(rsip::headers::To::new(one_line(req.to))));
    headers.push(Header::CallId(rsip::headers::CallId::new(one_line(
        req.call_id,
    ))));
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
        "{} {}",
        req.cseq, req.method
    ))));
    if let Some(contact) = req.contact {
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
    }
    headers.push(Header::UserAgent(rsip::headers::UserAgent::new(
        req.user_agent,
    )));
    for (name, value) in &req.headers {
        headers.push(Header::Other(name.to_string(), one_line(value)));
    }
    for (name, value) in req.extra_headers {
        if is_settable_header(name) {
            headers.push(Header::Other(name.clone(), one_line(value)));
        }
    }
    if let Some(content_type) = req.content_type {
        headers.push(Header::ContentType(rsip::headers::ContentType::new(
            content_type,
        )));
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        req.body.len().to_string(),
    )));
    let request = rsip::Request {
        method: req.method,
        uri: req.request_uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: req.body.to_vec(),
    };
    request.to_string().into_bytes()
}

/// The URI inside a name-addr (`<sip:...>;params`) or a bare addr-spec.
pub(crate) fn name_addr_uri(value: &str) -> Option<rsip::Uri> {
    rsip::headers::Route::new(value)
        .typed()
        .ok()
        .and_then(|route| route.uris().first().map(|u| u.uri.clone()))
        .or_else(|| {
            rsip::headers::Contact::new(value)
                .typed()
                .ok()
                .map(|contact| contact.uri)
        })
}

/// Whether a URI carries the `lr` parameter (loose routing).
pub(crate) fn uri_has_lr(uri: &rsip::Uri) -> bool {
    uri.params.iter().any(|p| matches!(p, Param::Lr))
}

/// The transport a URI asks for (`;transport=`), if any we support. A `sips:` URI always
/// means TLS (RFC 3261 §26.2.2: `sips:` over TCP is TLS; `;transport=udp` makes no sense).
pub(crate) fn uri_transport(uri: &rsip::Uri) -> Option<Transport> {
    if uri.scheme == Some(rsip::Scheme::Sips) {
        return Some(Transport::Tls);
    }
    match uri.transport() {
        Some(rsip::Transport::Udp) => Some(Transport::Udp),
        Some(rsip::Transport::Tcp) => Some(Transport::Tcp),
        Some(rsip::Transport::Tls) => Some(Transport::Tls),
        _ => None,
    }
}

/// A URI's host and port as a socket address, when the host is an IP literal.
pub(crate) fn uri_socket_addr(uri: &rsip::Uri) -> Option<SocketAddr> {
    let ip: IpAddr = match &uri.host_with_port.host {
        rsip::Host::IpAddr(ip) => *ip,
        rsip::Host::Domain(domain) => {
            let d = domain.to_string();
            d.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()?
        }
    };
    let port = uri
        .host_with_port
        .port
        .as_ref()
        .map(|p| *p.value())
        .unwrap_or(if uri_transport(uri) == Some(Transport::Tls) {
            DEFAULT_SIPS_PORT
        } else {
            DEFAULT_SIP_PORT
        });
    Some(SocketAddr::new(ip, port))
}

/// Display name without surrounding quotes.
pub(crate) fn unquote_display(name: &str) -> String {
    let trimmed = name.trim();
    trimmed
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(trimmed)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_split_outside_brackets_and_quotes() {
        let parts = split_header_list(r#"<sip:a@b;lr>, "x,y" <sip:c>, <sip:d,e>"#);
        assert_eq!(parts, vec!["<sip:a@b;lr>", r#""x,y" <sip:c>"#, "<sip:d,e>"]);
    }

    #[test]
    fn tls_uris_name_tls_and_port_5061() {
        let uri = |s: &str| rsip::Uri::try_from(s).unwrap();
        let tls = uri("sip:bot@192.0.2.1;transport=tls");
        assert_eq!(uri_transport(&tls), Some(Transport::Tls));
        assert_eq!(
            uri_socket_addr(&tls),
            Some("192.0.2.1:5061".parse().unwrap())
        );
        let sips = uri("sips:bot@192.0.2.1:443");
        assert_eq!(uri_transport(&sips), Some(Transport::Tls));
        assert_eq!(
            uri_socket_addr(&sips),
            Some("192.0.2.1:443".parse().unwrap())
        );
        let tcp = uri("sip:bot@192.0.2.1;transport=TCP");
        assert_eq!(uri_transport(&tcp), Some(Transport::Tcp));
        assert_eq!(
            uri_socket_addr(&tcp),
            Some("192.0.2.1:5060".parse().unwrap())
        );
        assert_eq!(uri_transport(&uri("sip:bot@192.0.2.1")), None);
    }

    #[test]
    fn tag_detection_ignores_uri_params() {
        assert!(!has_tag_param("<sip:a@b;tag=x>"));
        assert!(has_tag_param("<sip:a@b>;tag=x"));
        assert!(has_tag_param("sip:a@b;tag=x"));
    }
}
