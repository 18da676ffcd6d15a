//! Streaming speech-to-text: partial and final results, embedded and cloud engines.
