-- Per-turn latency and the per-call cost ledger.
--
-- Portable DDL, like 0001: TEXT, BIGINT and DOUBLE PRECISION only; booleans are BIGINT 0/1;
-- JSON documents are TEXT. Written once, when the call ends (with the call's final status).

-- The cost ledger: the priced total in integer micro-rupees (1 INR = 1 000 000), so sums
-- across calls never drift, and the whole ledger (quantities, priced lines, unpriced items)
-- as JSON. NULL for calls that ended before this version or never finished.
ALTER TABLE calls ADD COLUMN cost_inr_micros BIGINT;
ALTER TABLE calls ADD COLUMN cost_json TEXT;
-- Per-call latency summary over the turns (count, p50, p95, max, ...) as JSON.
ALTER TABLE calls ADD COLUMN latency_json TEXT;

-- One row per conversational turn: from the end of the caller's speech to the first RTP
-- packet of the agent's reply. Stage durations are milliseconds; NULL when the stage never
-- happened (no reply, reply cancelled, no LLM).
CREATE TABLE call_turns (
    tenant_id            TEXT NOT NULL,
    call_id              TEXT NOT NULL,
    -- 0-based, in the order the caller's speech ended
    turn_index           BIGINT NOT NULL,
    -- media time (ms since answer) at which the caller's speech ended
    speech_end_ms        BIGINT NOT NULL,
    -- the final transcript, possibly truncated; NULL without speech-to-text
    caller_text          TEXT,
    transcript_ms        BIGINT,
    plugin_ms            BIGINT,
    llm_first_token_ms   BIGINT,
    tts_first_audio_ms   BIGINT,
    first_rtp_ms         BIGINT,
    total_ms             BIGINT,
    -- total minus engine compute (STT processing, LLM time to first token, TTS synthesis)
    server_added_ms      BIGINT,
    stt_processing_ms    BIGINT,
    tts_synthesis_ms     BIGINT,
    -- 1 when the caller spoke again before the reply reached the wire
    superseded           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, call_id, turn_index),
    FOREIGN KEY (tenant_id, call_id) REFERENCES calls (tenant_id, id) ON DELETE CASCADE
);
