//! Bridged transfer: vaani calls the transfer target itself (the second leg), tells the person
//! who answers the plugin's summary, then connects the caller to them through the media engine.
//! Until the bridge is up the caller stays with the plugin; a target that is busy, does not
//! answer or hangs up during the summary is reported to the plugin as `transfer-failed`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use vaani_config::TrunkConfig;
use vaani_media::engine::{PortLease, SessionHandle};
use vaani_sip::{CallKey, OutboundCall, SdpSession, SipCommand};
use vaani_speech::{SpeechError, SynthesizedAudio};

use crate::app::AppState;
use crate::call::CallSignal;
use crate::outbound::{OutboundRoute, TrunkTarget, place_call_command};

/// Playback id of the summary on the second leg.
pub(crate) const SUMMARY_PLAYBACK: u64 = 1;

/// How long the target may ring when it is a SIP URI (a trunk's `ring_timeout_secs` applies
/// to numbers dialled through it).
const DIRECT_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the second leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegPhase {
    /// INVITE sent, no answer yet.
    Ringing,
    /// Answered; the summary is being said to the person who answered.
    Summary,
    /// The caller and the target are connected.
    Bridged,
}

/// The second leg of a bridged transfer.
pub(crate) struct Leg {
    /// The target as the plugin named it.
    pub target: String,
    /// Said to the person who answers before the caller is connected.
    pub summary: Option<String>,
    /// SIP signals of the leg (routed here by its request id, then its key).
    pub signals: mpsc::Receiver<CallSignal>,
    /// The leg's call, once the INVITE went out.
    pub key: Option<CallKey>,
    /// The RTP port our offer named, until the media session takes it.
    pub lease: Option<PortLease>,
    /// The leg's media, once answered.
    pub media: Option<SessionHandle>,
    /// The summary being synthesized, once answered.
    pub summary_audio: Option<oneshot::Receiver<Result<SynthesizedAudio, SpeechError>>>,
    pub phase: LegPhase,
    /// The leg's call is over on the SIP side (failed, or the target hung up).
    pub ended: bool,
    /// The trunk whose outbound limits this leg counts against, if it went through one.
    pub limited_trunk: Option<String>,
    /// Networks the leg's RTP is accepted from (the trunk's media ranges; any for a SIP URI).
    pub accept_from: Vec<ipnet::IpNet>,
}

/// The user part of a `sip:`/`sips:` URI, if any.
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))?;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// Places the second leg's INVITE to `uri`: a `tel:` number through the tenant's trunk (its
/// credentials, TLS, SRTP policy, codecs, caller id and limits, as for `POST /api/v1/calls`), or
/// a `sip:` URI directly (plain RTP, `dialled` as caller id).
pub(crate) async fn dial_leg(
    state: &Arc<AppState>,
    trunk: Option<&TrunkConfig>,
    uri: &str,
    dialled: &str,
    target: String,
    summary: Option<String>,
) -> Result<Leg, String> {
    let request_id = state
        .next_dial
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let lease = state
        .media
        .allocate_port()
        .map_err(|e| format!("no RTP port: {e}"))?;
    let (command, limited_trunk, accept_from) = if uri.to_ascii_lowercase().starts_with("tel:") {
        let number = uri[4..].split(';').next().unwrap_or("").trim();
        let trunk = trunk.ok_or("no trunk to dial a number through")?;
        let outbound = trunk
            .outbound
            .as_ref()
            .ok_or_else(|| format!("trunk {} has no [trunks.outbound]", trunk.id))?;
        let target = TrunkTarget::parse(&outbound.uri)
            .ok_or_else(|| format!("trunk {}: unusable outbound uri", trunk.id))?;
        let destination = target.resolve().await.map_err(|e| e.to_string())?;
        let codecs = match trunk.codecs.as_deref() {
            Some(codecs) => crate::call_media::codec_list(codecs),
            None => state.codecs.clone(),
        };
        let offer = SdpSession::offer_initial_with_srtp(
            &codecs,
            state.media_public_ip,
            lease.port(),
            crate::call::rand_session_id(),
            crate::call_media::srtp_mode(trunk.srtp),
        );
        let from = outbound.caller_id.as_deref().unwrap_or(dialled);
        let route = OutboundRoute {
            trunk,
            outbound,
            target: &target,
        };
        let placed = place_call_command(request_id, route, destination, (from, number), offer)
            .map_err(|e| e.to_string())?;
        state
            .outbound_limiters
            .try_start(&trunk.id, outbound)
            .map_err(|e| e.to_string())?;
        (
            placed.command,
            Some(trunk.id.clone()),
            trunk.media_cidrs.clone(),
        )
    } else {
        let target = TrunkTarget::parse(uri).ok_or("unusable SIP URI")?;
        if target.transport == vaani_sip::Transport::Tls {
            // No trust roots are configured for arbitrary targets.
            return Err("TLS targets are reached through the trunk (tel:), not directly".into());
        }
        let destination = target.resolve().await.map_err(|e| e.to_string())?;
        let offer = SdpSession::offer_initial(
            &state.codecs,
            state.media_public_ip,
            lease.port(),
            crate::call::rand_session_id(),
        );
        let call = OutboundCall {
            request_uri: uri.split('?').next().unwrap_or(uri).to_string(),
            destination,
            transport: target.transport,
            from_user: dialled.to_string(),
            from_display: None,
            to_user: uri_user(uri).unwrap_or("transfer").to_string(),
            sdp: offer,
            extra_headers: Vec::new(),
            credentials: None,
            ring_timeout: DIRECT_RING_TIMEOUT,
            tls: None,
        };
        let command = SipCommand::PlaceCall {
            request_id,
            call: Box::new(call),
        };
        (command, None, Vec::new())
    };
    let (tx, signals) = mpsc::channel(8);
    state
        .pending_legs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(request_id, tx);
    if !state.sip_command_sent(command).await {
        state
            .pending_legs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request_id);
        if let Some(trunk) = &limited_trunk {
            state.outbound_limiters.finish(trunk);
        }
        return Err("the SIP driver stopped".into());
    }
    Ok(Leg {
        target,
        summary,
        signals,
        key: None,
        lease: Some(lease),
        media: None,
        summary_audio: None,
        phase: LegPhase::Ringing,
        ended: false,
        limited_trunk,
        accept_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts_of_sip_uris() {
        assert_eq!(uri_user("sip:frontdesk@10.0.0.5:5070"), Some("frontdesk"));
        assert_eq!(uri_user("sips:+9180@host;transport=tls"), Some("+9180"));
        assert_eq!(uri_user("sip:a;x=y@host"), Some("a"));
        assert_eq!(uri_user("sip:host.example"), None);
        assert_eq!(uri_user("tel:+9180"), None);
    }
}
