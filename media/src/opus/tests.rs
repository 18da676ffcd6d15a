use super::*;

/// A voiced, speech-like 16 kHz signal: a 140 Hz glottal tone with harmonics up to 3.5 kHz,
/// its loudness swinging at 3 Hz like syllables.
fn voiced(n: usize) -> i16 {
    let t = n as f64 / SAMPLE_RATE as f64;
    let envelope = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
    let mut sample = 0.0;
    for harmonic in 1..=25 {
        let f = 140.0 * harmonic as f64;
        sample += (2.0 * std::f64::consts::PI * f * t).sin() / harmonic as f64;
    }
    (6000.0 * envelope * sample) as i16
}

fn frames(count: usize) -> Vec<Vec<i16>> {
    (0..count)
        .map(|i| {
            (0..FRAME_SAMPLES)
                .map(|n| voiced(i * FRAME_SAMPLES + n))
                .collect()
        })
        .collect()
}

fn encode_all(encoder: &mut OpusEncoder, pcm: &[Vec<i16>]) -> Vec<Vec<u8>> {
    pcm.iter()
        .map(|frame| {
            let mut out = [0u8; 160];
            let n = encoder.encode(frame, &mut out).expect("encode");
            out[..n].to_vec()
        })
        .collect()
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}

/// Correlation coefficient of two equally long signals.
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    dot / (rms(a) * rms(b) * a.len() as f64)
}

#[test]
fn the_encoder_runs_at_complexity_5_with_inband_fec() {
    let encoder = OpusEncoder::new().unwrap();
    assert_eq!(encoder.complexity().unwrap(), 5);
    assert!(encoder.inband_fec().unwrap());
}

#[test]
fn speech_survives_an_encode_decode_round_trip_at_20_ms_per_packet() {
    let pcm = frames(50);
    let packets = encode_all(&mut OpusEncoder::new().unwrap(), &pcm);
    let mut decoder = OpusDecoder::new().unwrap();
    let mut decoded = Vec::new();
    for packet in &packets {
        assert!(
            packet.len() <= 160 && packet.len() > 10,
            "{} bytes",
            packet.len()
        );
        assert_eq!(packet_duration_units(packet).unwrap(), FRAME_UNITS);
        let mut out = [0i16; MAX_PACKET_SAMPLES];
        let n = decoder.decode(packet, &mut out).unwrap();
        assert_eq!(n, FRAME_SAMPLES);
        decoded.extend_from_slice(&out[..n]);
    }
    let original: Vec<i16> = pcm.concat();
    // Skip the first 200 ms (encoder start-up); compare levels and, allowing for the codec's
    // delay, the waveform.
    let (a, b) = (&original[3200..15000], &decoded[3200..15000]);
    let ratio = rms(b) / rms(a);
    assert!((0.7..1.3).contains(&ratio), "level ratio {ratio:.2}");
    let best = (0..200)
        .map(|delay| {
            correlation(
                &original[3200..14000],
                &decoded[3200 + delay..14000 + delay],
            )
        })
        .fold(f64::MIN, f64::max);
    assert!(best > 0.8, "waveform correlation {best:.2}");
}

#[test]
fn our_packets_carry_lbrr_and_an_encoder_without_fec_does_not() {
    let pcm = frames(25);
    let with_fec = encode_all(&mut OpusEncoder::new().unwrap(), &pcm);
    let carrying = with_fec[1..].iter().filter(|p| has_inband_fec(p)).count();
    assert!(carrying >= 20, "{carrying} of 24 packets carry LBRR");

    let mut plain = OpusEncoder::new().unwrap();
    plain.set_inband_fec(false).unwrap();
    let without = encode_all(&mut plain, &pcm);
    assert!(without.iter().all(|p| !has_inband_fec(p)));
}

#[test]
fn toc_parsing_handles_celt_code_3_and_malformed_packets() {
    // CELT-only (config 31) never has LBRR, even with the bit pattern set.
    assert!(!has_inband_fec(&[31 << 3, 0xFF, 0xFF]));
    // SILK-only 20 ms mono (config 1), code 0: first frame byte's second bit is LBRR.
    assert!(has_inband_fec(&[1 << 3, 0b0100_0000]));
    assert!(!has_inband_fec(&[1 << 3, 0b1000_0000]));
    // Code 3, one frame, padding of 2 bytes: the frame starts after the padding length byte.
    assert!(has_inband_fec(&[(1 << 3) | 3, 0x41, 2, 0b0100_0000, 0, 0]));
    // Code 2 with a first frame of length 0, truncated packets, nothing at all.
    assert!(!has_inband_fec(&[(1 << 3) | 2, 0]));
    assert!(!has_inband_fec(&[(1 << 3) | 3]));
    assert!(!has_inband_fec(&[]));
    assert!(packet_duration_units(&[]).is_err());
    // Code 3 with zero frames is invalid.
    assert!(packet_duration_units(&[(1 << 3) | 3, 0]).is_err());
}

#[test]
fn a_lost_frame_is_recovered_from_the_next_packets_fec_better_than_plc() {
    let pcm = frames(30);
    let packets = encode_all(&mut OpusEncoder::new().unwrap(), &pcm);
    let lost = 20;
    let mut out = [0i16; MAX_PACKET_SAMPLES];

    let mut recovering = OpusDecoder::new().unwrap();
    let mut concealing = OpusDecoder::new().unwrap();
    for packet in &packets[..lost] {
        recovering.decode(packet, &mut out).unwrap();
        concealing.decode(packet, &mut out).unwrap();
    }
    assert!(has_inband_fec(&packets[lost + 1]));
    let mut recovered = [0i16; FRAME_SAMPLES];
    assert_eq!(
        recovering
            .decode_fec(&packets[lost + 1], &mut recovered)
            .unwrap(),
        FRAME_SAMPLES
    );
    let mut concealed = [0i16; FRAME_SAMPLES];
    assert_eq!(concealing.conceal(&mut concealed).unwrap(), FRAME_SAMPLES);

    // A reference decode of the lost packet itself.
    let mut reference = OpusDecoder::new().unwrap();
    for packet in &packets[..lost] {
        reference.decode(packet, &mut out).unwrap();
    }
    let mut truth = [0i16; FRAME_SAMPLES];
    reference.decode(&packets[lost], &mut truth).unwrap();

    let error = |x: &[i16]| {
        let diff: Vec<i16> = x
            .iter()
            .zip(&truth)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        rms(&diff)
    };
    assert!(rms(&recovered) > 0.3 * rms(&truth), "FEC frame is audio");
    assert!(
        error(&recovered) < error(&concealed),
        "FEC error {:.0} vs PLC error {:.0}",
        error(&recovered),
        error(&concealed)
    );
    // The next packet still decodes normally afterwards.
    assert_eq!(
        recovering.decode(&packets[lost + 1], &mut out).unwrap(),
        FRAME_SAMPLES
    );
}

#[test]
fn plc_and_fec_need_whole_2_5_ms_granules() {
    let mut decoder = OpusDecoder::new().unwrap();
    let mut odd = [0i16; 100];
    assert!(matches!(
        decoder.conceal(&mut odd),
        Err(OpusError::FrameSize(100))
    ));
    assert!(matches!(
        decoder.decode_fec(&[8, 0], &mut odd),
        Err(OpusError::FrameSize(100))
    ));
    assert_eq!(round_up_to_granule(100), 120);
    assert_eq!(round_up_to_granule(320), 320);
}

#[test]
fn garbage_payloads_are_errors_or_audio_never_panics() {
    let mut decoder = OpusDecoder::new().unwrap();
    let mut out = [0i16; MAX_PACKET_SAMPLES];
    assert!(decoder.decode(&[], &mut out).is_err());
    assert!(decoder.decode(&[(1 << 3) | 3, 0], &mut out).is_err());
    // Code 2 whose first frame claims more bytes than the packet has.
    assert!(
        decoder
            .decode(&[(1 << 3) | 2, 200, 1, 2], &mut out)
            .is_err()
    );
    // A 120 ms packet does not fit a 20 ms buffer.
    let mut small = [0i16; FRAME_SAMPLES];
    assert!(matches!(
        decoder.decode(&[(3 << 3) | 1, 0, 0], &mut small),
        Err(OpusError::BufferTooSmall { .. })
    ));
    // Pseudo-random payloads of every length up to 300 bytes.
    let mut state = 0x1234_5678_u32;
    let mut errors = 0;
    for len in 0..300 {
        let payload: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        if decoder.decode(&payload, &mut out).is_err() {
            errors += 1;
        }
        let _ = has_inband_fec(&payload);
    }
    assert!(errors > 0);
}
