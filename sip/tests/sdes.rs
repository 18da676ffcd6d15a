//! SDES `a=crypto` (RFC 4568) parsing, writing and suite choice, with real-world lines.

use rand::{Rng, SeedableRng, rngs::StdRng};
use vaani_sip::sdes::{self, CryptoAttribute, SDES_KEY_LEN, SdesError, SrtpSuite};

/// A Twilio Secure Trunking style offer: both suites, the 80-bit tag first.
const TWILIO_OFFER: &str = "v=0\r\n\
o=root 1234 1234 IN IP4 54.172.60.1\r\n\
s=Twilio Media Gateway\r\n\
c=IN IP4 54.172.60.1\r\n\
t=0 0\r\n\
m=audio 10000 RTP/SAVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^31\r\n\
a=sendrecv\r\n";

fn crypto_lines(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .collect()
}

#[test]
fn twilio_offer_with_both_suites() {
    let offered: Vec<CryptoAttribute> = crypto_lines(TWILIO_OFFER)
        .into_iter()
        .map(|l| CryptoAttribute::parse(l).unwrap())
        .collect();
    assert_eq!(offered.len(), 2);
    assert_eq!(offered[0].tag, 1);
    assert_eq!(offered[0].suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(offered[0].lifetime, Some(1 << 31));
    // "YS___semctl () {\t220;}\n}\nunles": the RFC 4568 §4 example key, 16 + 14 bytes.
    assert_eq!(&offered[0].master_key, b"YS___semctl () {");
    assert_eq!(&offered[0].master_salt, b"\t220;}\n}\nunles");
    assert_eq!(offered[1].tag, 2);
    assert_eq!(offered[1].suite, SrtpSuite::AesCm128HmacSha1_32);
    let mut key_salt = Vec::new();
    key_salt.extend_from_slice(&offered[1].master_key);
    key_salt.extend_from_slice(&offered[1].master_salt);
    assert_eq!(offered[1].key_salt().as_slice(), key_salt.as_slice());

    // Our preference picks the 80-bit tag; a 32-only policy picks line 2.
    let prefer_80 = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];
    assert_eq!(sdes::choose(&offered, &prefer_80).unwrap().tag, 1);
    let only_32 = [SrtpSuite::AesCm128HmacSha1_32];
    assert_eq!(sdes::choose(&offered, &only_32).unwrap().tag, 2);
    assert!(sdes::choose(&offered[..1], &only_32).is_none());
    assert!(sdes::choose(&[], &prefer_80).is_none());
    assert!(sdes::choose(&offered, &[]).is_none());

    // Writing them back gives the same lines.
    for (line, attr) in crypto_lines(TWILIO_OFFER).into_iter().zip(&offered) {
        assert_eq!(attr.to_string(), line);
    }
}

#[test]
fn twilio_inbound_offer_line_without_lifetime() {
    let line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZh";
    let attr = CryptoAttribute::parse(line).unwrap();
    assert_eq!(attr.tag, 1);
    assert_eq!(attr.lifetime, None);
    assert_eq!(
        attr.to_string(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZh"
    );
    // The `crypto:` prefix alone, and surrounding whitespace, are accepted too.
    assert_eq!(
        CryptoAttribute::parse(&format!("  {}\r\n", &line[2..])).unwrap(),
        attr
    );
    assert_eq!(line[9..].parse::<CryptoAttribute>().unwrap(), attr);
}

#[test]
fn rfc4568_example_with_mki_is_refused() {
    // RFC 4568 §7 (and §9.1): a key with lifetime 2^20 and MKI 1 of length 4.
    let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";
    let err = CryptoAttribute::parse(line).unwrap_err();
    assert_eq!(err, SdesError::MkiNotSupported("1:4".into()));
    assert_eq!(err.to_string(), "a=crypto: MKI \"1:4\" is not supported");
    // MKI without a lifetime, too.
    let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4";
    assert!(matches!(
        CryptoAttribute::parse(line),
        Err(SdesError::MkiNotSupported(_))
    ));
    // Without the MKI the same key is fine.
    let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
    let attr = CryptoAttribute::parse(line).unwrap();
    assert_eq!(attr.lifetime, Some(1 << 20));
    assert_eq!(attr.to_string(), line);
}

#[test]
fn rfc4568_example_with_session_parameter_and_mki() {
    // RFC 4568 §4: MKI and FEC_ORDER; the MKI is what is refused.
    let line = "1 AES_CM_128_HMAC_SHA1_80 \
                inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP";
    assert!(matches!(
        CryptoAttribute::parse(line),
        Err(SdesError::MkiNotSupported(_))
    ));
}

#[test]
fn harmless_session_parameters_are_tolerated_and_dangerous_ones_refused() {
    let base = "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj";
    for ok in [
        "KDR=0",
        "WSH=64",
        "FEC_ORDER=SRTP_FEC",
        "FEC_KEY=inline:x",
        "X-VENDOR",
    ] {
        let attr = CryptoAttribute::parse(&format!("{base} {ok}")).unwrap();
        assert_eq!(attr.suite, SrtpSuite::AesCm128HmacSha1_32, "{ok}");
        assert_eq!(
            attr.to_string(),
            base,
            "session parameters are not written back"
        );
    }
    for bad in [
        "UNENCRYPTED_SRTP",
        "UNENCRYPTED_SRTCP",
        "UNAUTHENTICATED_SRTP",
        "KDR=24",
        "KDR",
    ] {
        assert_eq!(
            CryptoAttribute::parse(&format!("{base} WSH=64 {bad}")).unwrap_err(),
            SdesError::UnsupportedSessionParam(bad.into()),
        );
    }
}

#[test]
fn generated_attributes_round_trip_and_are_random() {
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let a = CryptoAttribute::generate(7, suite);
        let b = CryptoAttribute::generate(7, suite);
        assert_ne!(a.key_salt(), b.key_salt(), "fresh key material each time");
        assert_eq!(a.lifetime, None);
        let text = a.to_string();
        assert!(text.starts_with(&format!("7 {suite} inline:")), "{text}");
        assert_eq!(text.len(), format!("7 {suite} inline:").len() + 40);
        assert_eq!(CryptoAttribute::parse(&text).unwrap(), a);
    }
    let mut attr = CryptoAttribute::generate(999_999_999, SrtpSuite::AesCm128HmacSha1_80);
    for (lifetime, written) in [(1u64 << 31, "|2^31"), (1 << 48, "|2^48"), (1000, "|1000")] {
        attr.lifetime = Some(lifetime);
        let text = attr.to_string();
        assert!(text.ends_with(written), "{text}");
        assert_eq!(CryptoAttribute::parse(&text).unwrap(), attr);
    }
}

#[test]
fn debug_output_never_shows_key_material() {
    let attr = CryptoAttribute::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
    )
    .unwrap();
    let debug = format!("{attr:?}");
    assert!(debug.contains("AesCm128HmacSha1_80"), "{debug}");
    assert!(!debug.contains("WVNf"), "{debug}");
    assert!(!debug.contains("master_key"), "{debug}");
}

#[test]
fn garbage_is_refused_with_a_typed_error() {
    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let cases: Vec<(String, SdesError)> = vec![
        (String::new(), SdesError::Missing("tag")),
        ("   ".into(), SdesError::Missing("tag")),
        ("1".into(), SdesError::Missing("suite")),
        (
            "1 AES_CM_128_HMAC_SHA1_80".into(),
            SdesError::Missing("key parameters"),
        ),
        (
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            SdesError::BadTag("x".into()),
        ),
        (
            format!("-1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            SdesError::BadTag("-1".into()),
        ),
        (
            format!("1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            SdesError::BadTag("1234567890".into()),
        ),
        (
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}"),
            SdesError::UnknownSuite("AES_256_CM_HMAC_SHA1_80".into()),
        ),
        (
            format!("1 AEAD_AES_128_GCM inline:{KEY}"),
            SdesError::UnknownSuite("AEAD_AES_128_GCM".into()),
        ),
        (
            format!("1 aes_cm_128_hmac_sha1_80 inline:{KEY}"),
            SdesError::UnknownSuite("aes_cm_128_hmac_sha1_80".into()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 uri:{KEY}"),
            SdesError::UnsupportedKeyMethod(format!("uri:{KEY}")),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            SdesError::MultipleKeys,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!!".into(),
            SdesError::BadBase64,
        ),
        (
            "1 AES_CM_128_HMAC_SHA1_80 inline:".into(),
            SdesError::KeyLength {
                expected: 30,
                actual: 0,
            },
        ),
        (
            // 16 bytes: a key without its salt.
            "1 AES_CM_128_HMAC_SHA1_80 inline:MDEyMzQ1Njc4OWFiY2RlZg==".into(),
            SdesError::KeyLength {
                expected: 30,
                actual: 16,
            },
        ),
        (
            // 46 bytes: an AES-256 key and salt under a 128-bit suite name.
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}MDEyMzQ1Njc4OWFiY2RlZg=="),
            SdesError::KeyLength {
                expected: 30,
                actual: 46,
            },
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^49"),
            SdesError::BadLifetime("2^49".into()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|0"),
            SdesError::BadLifetime("0".into()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^"),
            SdesError::BadLifetime("2^".into()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|"),
            SdesError::BadLifetime(String::new()),
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|2^20"),
            SdesError::BadLifetime("2^20".into()),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(
            CryptoAttribute::parse(&line).unwrap_err(),
            expected,
            "{line:?}"
        );
    }
    // 46 bytes of valid base64 are refused for their length.
    let long = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZA==";
    assert_eq!(
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{long}")).unwrap_err(),
        SdesError::KeyLength {
            expected: 30,
            actual: 46
        }
    );
    // The key method name is case-insensitive; suite names are not.
    assert!(CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 INLINE:{KEY}")).is_ok());
    assert_eq!(SDES_KEY_LEN, 16);
}

#[test]
fn random_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(4568);
    let alphabet: Vec<char> = "0123456789 |:;^=/+AES_CM_128_HMAC_SHA1_80inline:é\t\r\n"
        .chars()
        .collect();
    let valid = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31";
    for _ in 0..20_000 {
        let len = rng.random_range(0..90);
        let mut s: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        if rng.random_bool(0.5) {
            // Mutate a valid line instead.
            let mut chars: Vec<char> = valid.chars().collect();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..chars.len());
                chars[i] = alphabet[rng.random_range(0..alphabet.len())];
            }
            s = chars.into_iter().collect();
        }
        if let Ok(attr) = CryptoAttribute::parse(&s) {
            // Whatever parses writes back to something that parses to the same.
            assert_eq!(CryptoAttribute::parse(&attr.to_string()).unwrap(), attr);
        }
    }
}
