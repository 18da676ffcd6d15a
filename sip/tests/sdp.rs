//! SDP offer/answer.

use std::net::{IpAddr, SocketAddr};

use vaani_sip::sdp::{AudioCodec, MediaDirection, SdpError, answer_offer};

const LOCAL_IP: &str = "203.0.113.10";

fn local_ip() -> IpAddr {
    LOCAL_IP.parse().unwrap()
}

const TWILIO_OFFER: &str = "v=0\r\n\
o=root 81565042 81565042 IN IP4 168.86.128.10\r\n\
s=Twilio Media Gateway\r\n\
c=IN IP4 168.86.128.10\r\n\
t=0 0\r\n\
m=audio 40150 RTP/AVP 0 8 101\r\n\
a=maxptime:20\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=sendrecv\r\n\
a=rtcp:40151\r\n\
a=ptime:20\r\n";

const EXOTEL_OFFER: &str = "v=0\r\n\
o=- 3890123456 3890123456 IN IP4 182.76.143.61\r\n\
s=-\r\n\
c=IN IP4 182.76.143.61\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 8 0 96\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
a=ptime:20\r\n";

fn lines(sdp: &str) -> Vec<&str> {
    sdp.split("\r\n").filter(|l| !l.is_empty()).collect()
}

#[test]
fn twilio_offer_gets_pcmu_and_echoes_pt_101() {
    let (media, answer) = answer_offer(
        TWILIO_OFFER,
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
        local_ip(),
        30000,
        42,
    )
    .unwrap();
    assert_eq!(media.codec, AudioCodec::Pcmu);
    assert_eq!(media.payload_type, 0);
    assert_eq!(media.dtmf_payload_type, Some(101));
    assert_eq!(
        media.remote_rtp,
        Some("168.86.128.10:40150".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(media.ptime_ms, 20);
    assert_eq!(media.direction, MediaDirection::SendRecv);
    assert_eq!(
        lines(&answer),
        vec![
            "v=0",
            "o=vaani 42 42 IN IP4 203.0.113.10",
            "s=vaani",
            "c=IN IP4 203.0.113.10",
            "t=0 0",
            "m=audio 30000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ]
    );
    // Our own answer must parse as an offer too (round trip through the parser).
    let (again, _) = answer_offer(&answer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(again.dtmf_payload_type, Some(101));
}

#[test]
fn exotel_offer_with_pcma_preference_gets_pcma_and_pt_96() {
    let (media, answer) = answer_offer(
        EXOTEL_OFFER,
        &[AudioCodec::Pcma, AudioCodec::Pcmu],
        local_ip(),
        30002,
        7,
    )
    .unwrap();
    assert_eq!(media.codec, AudioCodec::Pcma);
    assert_eq!(media.payload_type, 8);
    assert_eq!(media.dtmf_payload_type, Some(96));
    let l = lines(&answer);
    assert!(l.contains(&"m=audio 30002 RTP/AVP 8 96"), "{answer}");
    assert!(l.contains(&"a=rtpmap:8 PCMA/8000"));
    assert!(l.contains(&"a=rtpmap:96 telephone-event/8000"));
    assert!(l.contains(&"a=fmtp:96 0-15"));
    assert!(!answer.contains("101"), "never a hard-coded 101");
}

#[test]
fn preference_order_wins_over_offer_order() {
    let (media, _) = answer_offer(EXOTEL_OFFER, &[AudioCodec::Pcmu], local_ip(), 30000, 1).unwrap();
    assert_eq!(media.codec, AudioCodec::Pcmu);
    assert_eq!(media.payload_type, 0);
}

#[test]
fn no_common_codec_is_an_error() {
    let offer = TWILIO_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 18 101");
    let err = answer_offer(
        &offer,
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
        local_ip(),
        1,
        1,
    )
    .unwrap_err();
    assert!(matches!(err, SdpError::NoCommonCodec { .. }), "{err:?}");
    // Offer has PCMU only; we accept only PCMA.
    let offer = TWILIO_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 0 101");
    let err = answer_offer(&offer, &[AudioCodec::Pcma], local_ip(), 1, 1).unwrap_err();
    assert!(matches!(err, SdpError::NoCommonCodec { .. }));
}

#[test]
fn sipp_offer_without_dtmf_fmtp_and_dynamic_codec_names() {
    let offer = "v=0\r\no=sipp 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 6000 RTP/AVP 97 96\r\na=rtpmap:97 pcmu/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
    let (media, answer) = answer_offer(
        offer,
        &[AudioCodec::Pcmu],
        "127.0.0.1".parse().unwrap(),
        7000,
        1,
    )
    .unwrap();
    assert_eq!(media.codec, AudioCodec::Pcmu);
    assert_eq!(media.payload_type, 97, "dynamic PT named PCMU is honoured");
    assert_eq!(media.dtmf_payload_type, Some(96));
    assert!(answer.contains("m=audio 7000 RTP/AVP 97 96\r\n"));
    assert!(answer.contains("a=rtpmap:97 PCMU/8000\r\n"));
    assert!(
        !answer.contains("a=fmtp"),
        "no fmtp invented when none was offered"
    );
}

#[test]
fn direction_is_mirrored() {
    for (offered, expected, attr) in [
        ("sendonly", MediaDirection::RecvOnly, "a=recvonly"),
        ("recvonly", MediaDirection::SendOnly, "a=sendonly"),
        ("inactive", MediaDirection::Inactive, "a=inactive"),
    ] {
        let offer = TWILIO_OFFER.replace("a=sendrecv", &format!("a={offered}"));
        let (media, answer) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
        assert_eq!(media.direction, expected);
        assert!(lines(&answer).contains(&attr), "{offered}: {answer}");
    }
    // Session-level direction applies when the media level has none.
    let offer = TWILIO_OFFER
        .replace("a=sendrecv\r\n", "")
        .replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let (media, _) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.direction, MediaDirection::RecvOnly);
}

#[test]
fn media_level_connection_overrides_session_level_and_hold_address_gives_none() {
    let offer = TWILIO_OFFER.replace(
        "m=audio 40150 RTP/AVP 0 8 101\r\n",
        "m=audio 40150 RTP/AVP 0 8 101\r\nc=IN IP4 168.86.130.5\r\n",
    );
    let (media, answer) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(
        media.remote_rtp,
        Some("168.86.130.5:40150".parse().unwrap())
    );
    assert!(answer.contains("c=IN IP4 203.0.113.10\r\n"));

    let offer = TWILIO_OFFER.replace("c=IN IP4 168.86.128.10", "c=IN IP4 0.0.0.0");
    let (media, answer) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.remote_rtp, None);
    assert!(
        answer.contains("c=IN IP4 203.0.113.10\r\n"),
        "our c= is always present"
    );

    let offer = TWILIO_OFFER.replace("c=IN IP4 168.86.128.10\r\n", "");
    let (media, _) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.remote_rtp, None);
}

#[test]
fn ptime_follows_the_offer_within_limits() {
    let offer = TWILIO_OFFER
        .replace("a=ptime:20", "a=ptime:30")
        .replace("a=maxptime:20", "a=maxptime:40");
    let (media, answer) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.ptime_ms, 30);
    assert!(answer.contains("a=ptime:20\r\n"), "we ask for 20 ms");
    let offer = TWILIO_OFFER.replace("a=ptime:20", "a=ptime:35");
    let (media, _) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.ptime_ms, 20);
}

#[test]
fn other_streams_are_declined_with_port_zero() {
    let offer = format!("{TWILIO_OFFER}m=video 40160 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n");
    let (_, answer) = answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 30000, 1).unwrap();
    let l = lines(&answer);
    assert!(l.contains(&"m=audio 30000 RTP/AVP 0 101"));
    assert!(l.contains(&"m=video 0 RTP/AVP 96"));
}

#[test]
fn srtp_only_or_no_audio_is_an_error() {
    // With SRTP off (the default), an RTP/SAVP-only offer says so.
    let offer = TWILIO_OFFER.replace("RTP/AVP", "RTP/SAVP");
    assert_eq!(
        answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap_err(),
        SdpError::SrtpOff
    );
    let offer = TWILIO_OFFER.replace("m=audio 40150", "m=audio 0");
    assert_eq!(
        answer_offer(&offer, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap_err(),
        SdpError::NoAudioStream
    );
}

#[test]
fn ipv6_answer_uses_ip6() {
    let (_, answer) = answer_offer(
        TWILIO_OFFER,
        &[AudioCodec::Pcmu],
        "2001:db8::10".parse().unwrap(),
        30000,
        1,
    )
    .unwrap();
    assert!(answer.contains("c=IN IP6 2001:db8::10\r\n"));
}

#[test]
fn garbage_is_an_error_and_never_panics() {
    for garbage in [
        "",
        "hello",
        "v=0\r\n",
        "m=audio 1 RTP/AVP 0\r\n",
        "v=0\r\no=\r\n",
        "\u{0}\u{1}",
    ] {
        assert!(
            answer_offer(garbage, &[AudioCodec::Pcmu], local_ip(), 1, 1).is_err(),
            "{garbage:?}"
        );
    }
    // Truncations and byte mutations of a valid offer.
    let bytes = TWILIO_OFFER.as_bytes();
    for len in 0..bytes.len() {
        let text = String::from_utf8_lossy(&bytes[..len]);
        let _ = answer_offer(&text, &[AudioCodec::Pcmu], local_ip(), 1, 1);
    }
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..5000 {
        let mut data = bytes.to_vec();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let pos = (seed as usize) % data.len();
            data[pos] = (seed >> 32) as u8;
        }
        let text = String::from_utf8_lossy(&data);
        let _ = answer_offer(
            &text,
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            local_ip(),
            1,
            1,
        );
    }
}

fn origin_version(sdp: &str) -> String {
    let origin = sdp.lines().find(|l| l.starts_with("o=")).unwrap();
    origin.split(' ').nth(2).unwrap().to_string()
}

#[test]
fn a_session_keeps_its_codec_and_version_across_unchanged_reoffers() {
    let mut session = vaani_sip::SdpSession::answer_initial(
        TWILIO_OFFER,
        &[AudioCodec::Pcmu, AudioCodec::Pcma],
        local_ip(),
        30000,
        7,
    )
    .unwrap();
    assert_eq!(session.negotiated().codec, AudioCodec::Pcmu);
    let first = session.local_sdp().to_string();

    // The same offer again (a session refresh): same answer, same version.
    session.answer(TWILIO_OFFER).unwrap();
    assert_eq!(session.local_sdp(), first);

    // A re-offer listing PCMA first still carries PCMU: the codec in use stays.
    let reordered = TWILIO_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 0 101");
    assert_eq!(session.answer(&reordered).unwrap().codec, AudioCodec::Pcmu);

    // Hold changes the answer, so the version rises by one.
    let hold = TWILIO_OFFER.replace("a=sendrecv", "a=sendonly");
    let media = session.answer(&hold).unwrap();
    assert_eq!(media.direction, MediaDirection::RecvOnly);
    assert_eq!(origin_version(session.local_sdp()), "8");

    // An offer we cannot take leaves everything as it was.
    let before = session.clone();
    let video_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n";
    assert_eq!(session.answer(video_only), Err(SdpError::NoAudioStream));
    assert_eq!(session, before);

    // Our own offer (re-INVITE without SDP) is sendrecv even while the peer holds us.
    let offer = session.offer().to_string();
    assert!(offer.contains("a=sendrecv\r\n"), "{offer}");
    assert!(offer.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{offer}");
    assert_eq!(origin_version(&offer), "9");
}

const TWILIO_SECURE_OFFER: &str = "v=0\r\n\
o=root 81565042 81565042 IN IP4 168.86.128.10\r\n\
s=Twilio Media Gateway\r\n\
c=IN IP4 168.86.128.10\r\n\
t=0 0\r\n\
m=audio 40150 RTP/SAVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NgAkdAl4/i3qE5KcjXwhjLSDwDrgpJjcMVg2ydBp|2^31\r\n\
a=sendrecv\r\n\
a=ptime:20\r\n";

#[test]
fn a_secure_offer_is_answered_with_our_own_key_on_the_chosen_tag() {
    use vaani_sip::{CryptoAttribute, SrtpMode, SrtpSuite};
    for mode in [SrtpMode::Optional, SrtpMode::Required] {
        let mut session = vaani_sip::SdpSession::answer_initial_with_srtp(
            TWILIO_SECURE_OFFER,
            &[AudioCodec::Pcmu],
            local_ip(),
            30000,
            1,
            mode,
        )
        .unwrap();
        let answer = session.local_sdp().to_string();
        assert!(
            answer.contains("m=audio 30000 RTP/SAVP 0 101\r\n"),
            "{answer}"
        );
        let crypto_line = answer
            .lines()
            .find_map(|l| l.strip_prefix("a=crypto:"))
            .expect("our a=crypto");
        let ours = CryptoAttribute::parse(crypto_line).unwrap();
        assert_eq!(ours.tag, 1);
        assert_eq!(ours.suite, SrtpSuite::AesCm128HmacSha1_80);
        let keys = session.negotiated().srtp.clone().expect("srtp keys");
        assert_eq!(keys.local, ours);
        assert_eq!(
            keys.remote.to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31"
        );
        assert_ne!(keys.local.key_salt(), keys.remote.key_salt());
        // A refresh with the same offer keeps our key and the SDP version.
        session.answer(TWILIO_SECURE_OFFER).unwrap();
        assert_eq!(session.local_sdp(), answer);
        // The peer rekeys: we do too.
        let rekeyed = TWILIO_SECURE_OFFER.replace(
            "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
            "inline:YUJjRGVGZ0hpSmtMbU5vUHFSc1R1VndYeVo0NTY3",
        );
        session.answer(&rekeyed).unwrap();
        assert_ne!(
            session.negotiated().srtp.as_ref().unwrap().local,
            keys.local
        );
    }
}

#[test]
fn the_trunk_srtp_policy_decides_between_plain_and_secure_offers() {
    use vaani_sip::SrtpMode;
    let answer = |offer: &str, mode| {
        vaani_sip::SdpSession::answer_initial_with_srtp(
            offer,
            &[AudioCodec::Pcmu],
            local_ip(),
            30000,
            1,
            mode,
        )
    };
    // Off: a secure-only offer is refused (488), a plain one answered plain.
    assert_eq!(
        answer(TWILIO_SECURE_OFFER, SrtpMode::Off).unwrap_err(),
        SdpError::SrtpOff
    );
    let plain = answer(TWILIO_OFFER, SrtpMode::Off).unwrap();
    assert!(plain.negotiated().srtp.is_none());
    // Required: a plain offer is refused, and so is a secure one without a usable key.
    assert_eq!(
        answer(TWILIO_OFFER, SrtpMode::Required).unwrap_err(),
        SdpError::SrtpRequired
    );
    let mki_only = TWILIO_SECURE_OFFER
        .replace("|2^31\r\na=crypto:2", "|2^31|1:4\r\na=crypto:2")
        .replace(
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NgAkdAl4/i3qE5KcjXwhjLSDwDrgpJjcMVg2ydBp|2^31\r\n",
            "",
        );
    assert_eq!(
        answer(&mki_only, SrtpMode::Required).unwrap_err(),
        SdpError::SrtpRequired
    );
    // Optional: secure when offered, plain otherwise.
    assert!(
        answer(TWILIO_SECURE_OFFER, SrtpMode::Optional)
            .unwrap()
            .negotiated()
            .srtp
            .is_some()
    );
    assert!(
        answer(TWILIO_OFFER, SrtpMode::Optional)
            .unwrap()
            .negotiated()
            .srtp
            .is_none()
    );
}

/// An answer from a trunk to our secure offer, choosing `tag` with `suite` on `profile`.
fn secure_answer(profile: &str, crypto: Option<(u32, &str)>) -> String {
    let crypto = crypto
        .map(|(tag, suite)| {
            format!("a=crypto:{tag} {suite} inline:NgAkdAl4/i3qE5KcjXwhjLSDwDrgpJjcMVg2ydBp\r\n")
        })
        .unwrap_or_default();
    format!(
        "v=0\r\n\
         o=gw 1 1 IN IP4 168.86.128.20\r\n\
         s=-\r\n\
         c=IN IP4 168.86.128.20\r\n\
         t=0 0\r\n\
         m=audio 5000 {profile} 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n{crypto}"
    )
}

fn our_crypto(sdp: &str) -> Vec<vaani_sip::CryptoAttribute> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|l| vaani_sip::CryptoAttribute::parse(l).unwrap())
        .collect()
}

#[test]
fn a_required_srtp_offer_is_savp_with_both_suites_and_takes_the_chosen_tag() {
    use vaani_sip::{SdpSession, SrtpMode, SrtpSuite};
    let offer = || {
        SdpSession::offer_initial_with_srtp(
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            local_ip(),
            30000,
            5,
            SrtpMode::Required,
        )
    };
    let mut session = offer();
    let sdp = session.local_sdp().to_string();
    assert!(sdp.contains("m=audio 30000 RTP/SAVP 0 8 101\r\n"), "{sdp}");
    let ours = our_crypto(&sdp);
    assert_eq!(ours.len(), 2, "{sdp}");
    assert_eq!(
        (ours[0].tag, ours[0].suite),
        (1, SrtpSuite::AesCm128HmacSha1_80)
    );
    assert_eq!(
        (ours[1].tag, ours[1].suite),
        (2, SrtpSuite::AesCm128HmacSha1_32)
    );
    assert_ne!(ours[0].key_salt(), ours[1].key_salt(), "a key per line");
    assert_ne!(
        our_crypto(offer().local_sdp())[0].key_salt(),
        ours[0].key_salt(),
        "fresh keys per call"
    );
    assert!(session.negotiated().srtp.is_none(), "nothing agreed yet");

    // Refused answers leave the session as it was.
    let before = session.clone();
    for (answer, error) in [
        (secure_answer("RTP/AVP", None), SdpError::SrtpRequired),
        (secure_answer("RTP/SAVP", None), SdpError::SrtpRequired),
        // Best-effort keys on RTP/AVP are not enough when SRTP is required.
        (
            secure_answer("RTP/AVP", Some((1, "AES_CM_128_HMAC_SHA1_80"))),
            SdpError::SrtpRequired,
        ),
        (
            secure_answer("RTP/SAVP", Some((3, "AES_CM_128_HMAC_SHA1_80"))),
            SdpError::CryptoNotOffered {
                tag: 3,
                suite: SrtpSuite::AesCm128HmacSha1_80,
            },
        ),
        (
            secure_answer("RTP/SAVP", Some((1, "AES_CM_128_HMAC_SHA1_32"))),
            SdpError::CryptoNotOffered {
                tag: 1,
                suite: SrtpSuite::AesCm128HmacSha1_32,
            },
        ),
    ] {
        assert_eq!(session.accept_answer(&answer), Err(error), "{answer}");
        assert_eq!(session, before);
    }

    // The peer picks the 32-bit line: we encrypt with our tag-2 key, decrypt with theirs.
    let media = session
        .accept_answer(&secure_answer(
            "RTP/SAVP",
            Some((2, "AES_CM_128_HMAC_SHA1_32")),
        ))
        .unwrap()
        .clone();
    let keys = media.srtp.expect("SRTP agreed");
    assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(keys.local, ours[1]);
    assert_eq!(keys.remote.tag, 2);
    assert_eq!(
        media.remote_rtp,
        Some("168.86.128.20:5000".parse().unwrap())
    );

    // A refresh re-offers the same SDP (same o= version); a re-offer of our own (re-INVITE
    // without SDP) keeps SAVP and only the key in use.
    assert_eq!(session.refresh_offer(), sdp);
    let reoffer = session.offer().to_string();
    assert!(reoffer.contains("RTP/SAVP 0 101\r\n"), "{reoffer}");
    assert_eq!(our_crypto(&reoffer), vec![ours[1].clone()]);
    assert_eq!(origin_version(&reoffer), "6");
    session
        .accept_answer(&secure_answer(
            "RTP/SAVP",
            Some((2, "AES_CM_128_HMAC_SHA1_32")),
        ))
        .unwrap();
    assert_eq!(session.negotiated().srtp.as_ref().unwrap().local, ours[1]);
}

#[test]
fn an_optional_srtp_offer_is_best_effort_avp_with_keys_and_takes_either_answer() {
    use vaani_sip::{SdpSession, SrtpMode, SrtpSuite};
    let offer = || {
        SdpSession::offer_initial_with_srtp(
            &[AudioCodec::Pcmu],
            local_ip(),
            30000,
            5,
            SrtpMode::Optional,
        )
    };
    let session = offer();
    let sdp = session.local_sdp().to_string();
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 101\r\n"), "{sdp}");
    let ours = our_crypto(&sdp);
    assert_eq!(ours.len(), 2);

    // A plain answer: plain RTP.
    let mut plain = session.clone();
    let media = plain
        .accept_answer(&secure_answer("RTP/AVP", None))
        .unwrap();
    assert!(media.srtp.is_none());

    // Keys echoed on RTP/AVP (best effort) or on RTP/SAVP: SRTP with the chosen line.
    for profile in ["RTP/AVP", "RTP/SAVP"] {
        let mut secure = session.clone();
        let media = secure
            .accept_answer(&secure_answer(
                profile,
                Some((1, "AES_CM_128_HMAC_SHA1_80")),
            ))
            .unwrap();
        let keys = media.srtp.clone().expect(profile);
        assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(keys.local, ours[0]);
        // Our own later offer keeps the profile that was agreed.
        let reoffer = secure.offer().to_string();
        assert!(
            reoffer.contains(&format!("m=audio 30000 {profile} 0 101\r\n")),
            "{reoffer}"
        );
        assert_eq!(our_crypto(&reoffer), vec![ours[0].clone()]);
    }

    // A best-effort session answers the peer's best-effort re-offer with its key, keeping SRTP.
    let mut secure = session.clone();
    secure
        .accept_answer(&secure_answer(
            "RTP/AVP",
            Some((1, "AES_CM_128_HMAC_SHA1_80")),
        ))
        .unwrap();
    let reoffer_from_peer = secure_answer("RTP/AVP", Some((1, "AES_CM_128_HMAC_SHA1_80")));
    let media = secure.answer(&reoffer_from_peer).unwrap().clone();
    assert_eq!(media.srtp.as_ref().unwrap().local, ours[0]);
    assert!(
        secure
            .local_sdp()
            .contains("m=audio 30000 RTP/AVP 0 101\r\n")
    );

    // Off: no keys at all, as before.
    let off = SdpSession::offer_initial(&[AudioCodec::Pcmu], local_ip(), 30000, 5);
    assert!(our_crypto(off.local_sdp()).is_empty());
    assert_eq!(
        off,
        SdpSession::offer_initial_with_srtp(
            &[AudioCodec::Pcmu],
            local_ip(),
            30000,
            5,
            SrtpMode::Off
        )
    );
}

const G722_OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP4 192.0.2.7\r\n\
s=-\r\n\
c=IN IP4 192.0.2.7\r\n\
t=0 0\r\n\
m=audio 4000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n";

#[test]
fn g722_is_chosen_by_preference_with_its_8000_clock() {
    let preference = [AudioCodec::G722, AudioCodec::Pcmu, AudioCodec::Pcma];
    let (media, answer) = answer_offer(G722_OFFER, &preference, local_ip(), 30000, 7).unwrap();
    assert_eq!(media.codec, AudioCodec::G722);
    assert_eq!(media.payload_type, 9);
    assert_eq!(media.dtmf_payload_type, Some(101));
    let lines = lines(&answer);
    assert!(lines.contains(&"m=audio 30000 RTP/AVP 9 101"), "{lines:?}");
    assert!(lines.contains(&"a=rtpmap:9 G722/8000"), "{lines:?}");
    assert_eq!(AudioCodec::G722.clock_rate(), 8000);

    // G.711 first in the preference: the offer's G.722 is not taken.
    let (media, _) = answer_offer(
        G722_OFFER,
        &[AudioCodec::Pcmu, AudioCodec::G722],
        local_ip(),
        30000,
        7,
    )
    .unwrap();
    assert_eq!(media.codec, AudioCodec::Pcmu);
    // Not configured: never chosen even when it is all the offer has.
    let only_g722 = G722_OFFER.replace("RTP/AVP 9 0 8 101", "RTP/AVP 9 101");
    assert!(
        answer_offer(
            &only_g722,
            &[AudioCodec::Pcmu, AudioCodec::Pcma],
            local_ip(),
            1,
            1
        )
        .is_err()
    );
    // Static payload type 9 without an rtpmap is G.722 too.
    let bare = only_g722.replace("a=rtpmap:9 G722/8000\r\n", "");
    let (media, _) = answer_offer(&bare, &preference, local_ip(), 1, 1).unwrap();
    assert_eq!(media.codec, AudioCodec::G722);
    // A G722 rtpmap at another clock rate is not ours.
    let odd = only_g722.replace("G722/8000", "G722/16000");
    assert!(answer_offer(&odd, &preference, local_ip(), 1, 1).is_err());
}

#[test]
fn our_offer_includes_g722_when_configured() {
    let offer = vaani_sip::SdpSession::offer_initial(
        &[AudioCodec::G722, AudioCodec::Pcmu],
        local_ip(),
        30000,
        5,
    );
    let sdp = offer.local_sdp();
    assert!(sdp.contains("m=audio 30000 RTP/AVP 9 0 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:9 G722/8000\r\n"), "{sdp}");
    // The peer answering with our offer picks G.722 (the round trip through the parser).
    let (media, _) = answer_offer(sdp, &[AudioCodec::G722], local_ip(), 1, 1).unwrap();
    assert_eq!((media.codec, media.payload_type), (AudioCodec::G722, 9));
    // Not configured: not offered.
    let plain = vaani_sip::SdpSession::offer_initial(&[AudioCodec::Pcmu], local_ip(), 30000, 5);
    assert!(!plain.local_sdp().contains("G722"));
}

/// A wideband softphone's offer: Opus on dynamic type 109 (not the usual 111) with FEC, G.722,
/// PCMU, and telephone-event at both clocks.
const OPUS_OFFER: &str = "v=0\r\n\
o=- 2 2 IN IP4 192.0.2.8\r\n\
s=-\r\n\
c=IN IP4 192.0.2.8\r\n\
t=0 0\r\n\
m=audio 4002 RTP/AVP 109 9 0 110 101\r\n\
a=rtpmap:109 opus/48000/2\r\n\
a=fmtp:109 minptime=10;useinbandfec=1\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n";

#[test]
fn opus_is_answered_on_the_offerers_payload_type_with_fec_requested() {
    let preference = [AudioCodec::Opus, AudioCodec::G722, AudioCodec::Pcmu];
    let (media, answer) = answer_offer(OPUS_OFFER, &preference, local_ip(), 30000, 7).unwrap();
    assert_eq!((media.codec, media.payload_type), (AudioCodec::Opus, 109));
    // telephone-event at the audio's 48 kHz clock (see the telephone-event test below).
    assert_eq!(media.dtmf_payload_type, Some(110));
    let lines = lines(&answer);
    assert!(
        lines.contains(&"m=audio 30000 RTP/AVP 109 110"),
        "{lines:?}"
    );
    assert!(lines.contains(&"a=rtpmap:109 opus/48000/2"), "{lines:?}");
    let fmtp = lines
        .iter()
        .find(|l| l.starts_with("a=fmtp:109 "))
        .expect("an fmtp for opus");
    assert!(fmtp.contains("useinbandfec=1"), "{fmtp}");
    assert!(fmtp.contains("maxplaybackrate=16000"), "{fmtp}");
    assert!(
        lines.contains(&"a=rtpmap:110 telephone-event/48000"),
        "{lines:?}"
    );
    assert!(
        !answer.contains("G722") && !answer.contains("PCMU"),
        "{answer}"
    );
    assert_eq!(AudioCodec::Opus.clock_rate(), 48_000);
    assert_eq!(AudioCodec::Opus.encoding_name(), "opus");
}

#[test]
fn opus_takes_its_place_in_the_preference_order() {
    // G.722 preferred: the offer's Opus is not taken.
    let (media, _) = answer_offer(
        OPUS_OFFER,
        &[AudioCodec::G722, AudioCodec::Opus],
        local_ip(),
        1,
        1,
    )
    .unwrap();
    assert_eq!(media.codec, AudioCodec::G722);
    // Not configured: never chosen, even when it is all the offer has.
    let only_opus = OPUS_OFFER.replace("RTP/AVP 109 9 0 110 101", "RTP/AVP 109 101");
    let refused = answer_offer(
        &only_opus,
        &[AudioCodec::Pcmu, AudioCodec::G722],
        local_ip(),
        1,
        1,
    );
    assert!(
        matches!(refused, Err(SdpError::NoCommonCodec { .. })),
        "{refused:?}"
    );
    let (media, _) = answer_offer(&only_opus, &[AudioCodec::Opus], local_ip(), 1, 1).unwrap();
    assert_eq!((media.codec, media.payload_type), (AudioCodec::Opus, 109));
    // Opus has no static payload type: without its rtpmap, or at another clock, or on a
    // static number, it is not Opus.
    let bare = only_opus.replace("a=rtpmap:109 opus/48000/2\r\n", "");
    assert!(answer_offer(&bare, &[AudioCodec::Opus], local_ip(), 1, 1).is_err());
    let odd = only_opus.replace("opus/48000/2", "opus/16000/1");
    assert!(answer_offer(&odd, &[AudioCodec::Opus], local_ip(), 1, 1).is_err());
    let static_number = only_opus
        .replace("RTP/AVP 109 101", "RTP/AVP 3 101")
        .replace("rtpmap:109", "rtpmap:3");
    assert!(answer_offer(&static_number, &[AudioCodec::Opus], local_ip(), 1, 1).is_err());
    // The encoding name is case-insensitive.
    let upper = only_opus.replace("opus/48000/2", "OPUS/48000/2");
    assert!(answer_offer(&upper, &[AudioCodec::Opus], local_ip(), 1, 1).is_ok());
}

#[test]
fn our_offer_includes_opus_on_a_dynamic_payload_type_when_configured() {
    let mut offer = vaani_sip::SdpSession::offer_initial(
        &[AudioCodec::Opus, AudioCodec::Pcmu],
        local_ip(),
        30000,
        5,
    );
    let sdp = offer.local_sdp().to_string();
    assert!(sdp.contains("m=audio 30000 RTP/AVP 111 0 101\r\n"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:111 opus/48000/2\r\n"), "{sdp}");
    assert!(
        sdp.contains("a=fmtp:111 minptime=10;useinbandfec=1"),
        "{sdp}"
    );
    assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"), "{sdp}");
    // The peer answering with our offer picks Opus on 111 (round trip through the parser).
    let (media, answer) = answer_offer(&sdp, &[AudioCodec::Opus], local_ip(), 1, 1).unwrap();
    assert_eq!((media.codec, media.payload_type), (AudioCodec::Opus, 111));
    // We take that answer: Opus is in force.
    let agreed = offer.accept_answer(&answer).unwrap();
    assert_eq!((agreed.codec, agreed.payload_type), (AudioCodec::Opus, 111));
    // Not configured: not offered.
    let plain = vaani_sip::SdpSession::offer_initial(&[AudioCodec::Pcmu], local_ip(), 30000, 5);
    assert!(!plain.local_sdp().to_ascii_lowercase().contains("opus"));
}

#[test]
fn an_opus_call_takes_telephone_event_at_48000_when_offered_else_8000() {
    // OPUS_OFFER carries both: Opus gets the 48 kHz one (RFC 4733 §2.1, the audio's clock).
    let (media, answer) = answer_offer(OPUS_OFFER, &[AudioCodec::Opus], local_ip(), 1, 1).unwrap();
    assert_eq!(
        (media.dtmf_payload_type, media.dtmf_clock_rate),
        (Some(110), 48_000)
    );
    let lines = lines(&answer);
    assert!(lines.contains(&"m=audio 1 RTP/AVP 109 110"), "{lines:?}");
    assert!(
        lines.contains(&"a=rtpmap:110 telephone-event/48000"),
        "{lines:?}"
    );
    // G.722 from the same offer keeps the 8 kHz one.
    let (media, _) = answer_offer(OPUS_OFFER, &[AudioCodec::G722], local_ip(), 1, 1).unwrap();
    assert_eq!(
        (media.dtmf_payload_type, media.dtmf_clock_rate),
        (Some(101), 8000)
    );
    // Only the 8 kHz one offered: Opus uses it.
    let only_8k = OPUS_OFFER
        .replace(" 110 101", " 101")
        .replace("a=rtpmap:110 telephone-event/48000\r\n", "");
    let (media, answer) = answer_offer(&only_8k, &[AudioCodec::Opus], local_ip(), 1, 1).unwrap();
    assert_eq!(
        (media.dtmf_payload_type, media.dtmf_clock_rate),
        (Some(101), 8000)
    );
    assert!(
        answer.contains("a=rtpmap:101 telephone-event/8000\r\n"),
        "{answer}"
    );
    // Only the 48 kHz one offered: a G.711 call has no DTMF.
    let only_48k = OPUS_OFFER.replace(" 110 101", " 110").replace(
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
        "",
    );
    let (media, answer) = answer_offer(&only_48k, &[AudioCodec::Pcmu], local_ip(), 1, 1).unwrap();
    assert_eq!(media.dtmf_payload_type, None);
    assert!(!answer.contains("telephone-event"), "{answer}");
}
