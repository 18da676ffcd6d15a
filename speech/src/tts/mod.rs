//! Streaming text-to-speech: first audio before the whole text is synthesized; cloud engines.
