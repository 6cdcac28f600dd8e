//! Response framing on the client side (§1.2/§1.4), sans-IO.
//!
//! A response is the bytes up to a `\n` that is followed by a prompt starting with `@` (`@`,
//! `@alice@`, `@bob@`). The prompt is consumed with its response; if a TLS record boundary cuts the
//! prompt short, its tail (`alice@`) is dropped from the front of the next response. `pol` answers
//! `@bob@` with no newline. In monitor mode everything is line-based: `notification: {json}` lines and
//! responses (with or without a prompt, possibly glued to the front of the next line) interleave.

/// Accumulates received bytes and cuts them into frames.
#[derive(Debug)]
pub(crate) struct FrameBuffer {
    buf: Vec<u8>,
    limit: usize,
    /// The last frame ended at `\n@` with nothing after it: an `@alice@` prompt may still be arriving.
    prompt_may_continue: bool,
}

/// The buffer grew past the configured limit without completing a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

impl FrameBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            prompt_may_continue: false,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) -> Result<(), Overflow> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            return Err(Overflow);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Consumes the greeting `@` sent right after the TLS handshake.
    pub(crate) fn take_greeting(&mut self) -> Option<Result<(), String>> {
        match self.buf.first()? {
            b'@' => {
                self.buf.remove(0);
                // A greeting is a bare `@`; nothing may follow before the first command.
                Some(Ok(()))
            }
            _ => Some(Err(self.drain_lossy(self.buf.len()))),
        }
    }

    /// The next response frame without its prompt (`\r\n` tolerated). With `eof`, a final line that has
    /// no prompt (e.g. `error:AT0012-…\n` before a close) is returned too.
    pub(crate) fn next_response(&mut self, eof: bool) -> Option<String> {
        self.drop_prompt_tail();
        let mut from = 0;
        while let Some(rel) = self.buf.get(from..)?.iter().position(|&b| b == b'\n') {
            let nl = from + rel;
            match self.buf.get(nl + 1) {
                Some(b'@') => {
                    let frame = self.drain_lossy(nl);
                    self.buf.drain(..2); // `\n@`
                    self.take_prompt_rest();
                    return Some(strip_cr(frame));
                }
                None if eof => {
                    let frame = self.drain_lossy(nl);
                    self.buf.clear();
                    return Some(strip_cr(frame));
                }
                None => return None,
                Some(_) => from = nl + 1,
            }
        }
        None
    }

    /// The reply to `pol`: `@bob@` on success, otherwise an ordinary (error) response.
    pub(crate) fn next_pol_reply(&mut self, eof: bool) -> Option<String> {
        if self.buf.first() == Some(&b'@') {
            let rest = self.buf.get(1..)?;
            let end = rest.iter().position(|&b| b == b'@' || b == b'\n')?;
            if rest.get(end) == Some(&b'@') {
                let frame = self.drain_lossy(end + 2);
                self.prompt_may_continue = false;
                return Some(frame);
            }
        }
        self.next_response(eof)
    }

    /// The next complete line (monitor mode), without its `\n`/`\r\n`. Blank lines are skipped.
    pub(crate) fn next_line(&mut self) -> Option<String> {
        loop {
            let nl = self.buf.iter().position(|&b| b == b'\n')?;
            let line = strip_cr(self.drain_lossy(nl));
            self.buf.remove(0);
            if !line.trim().is_empty() {
                return Some(line);
            }
        }
    }

    /// Whatever is left (for error messages when the server closed mid-frame).
    pub(crate) fn take_rest(&mut self) -> String {
        self.drain_lossy(self.buf.len())
    }

    fn take_prompt_rest(&mut self) {
        // `@` was consumed; `alice@` may follow. A prompt name holds no `@`, `:`, whitespace.
        let end = self
            .buf
            .iter()
            .position(|&b| b == b'@' || b == b':' || b.is_ascii_whitespace());
        match end {
            Some(i) if self.buf.get(i) == Some(&b'@') => {
                self.buf.drain(..=i);
                self.prompt_may_continue = false;
            }
            // Only part of `alice@` has arrived: drop it when the rest does.
            _ => self.prompt_may_continue = true,
        }
    }

    fn drop_prompt_tail(&mut self) {
        if !self.prompt_may_continue || self.buf.is_empty() {
            return;
        }
        if self.buf.first() != Some(&b'@') {
            let end = self
                .buf
                .iter()
                .position(|&b| b == b'@' || b == b':' || b.is_ascii_whitespace());
            if let Some(i) = end.filter(|&i| self.buf.get(i) == Some(&b'@')) {
                self.buf.drain(..=i);
            } else if end.is_none() {
                // Still incomplete; wait for more bytes.
                return;
            }
        }
        self.prompt_may_continue = false;
    }

    fn drain_lossy(&mut self, len: usize) -> String {
        let len = len.min(self.buf.len());
        let bytes: Vec<u8> = self.buf.drain(..len).collect();
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn strip_cr(mut line: String) -> String {
    if line.ends_with('\r') {
        line.pop();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb(bytes: &[u8]) -> FrameBuffer {
        let mut f = FrameBuffer::new(1 << 20);
        f.push(bytes).unwrap();
        f
    }

    #[test]
    fn every_prompt_form_is_consumed() {
        let mut f = fb(b"data:1\n@data:2\n@alice@data:3\n@bob@");
        assert_eq!(f.next_response(false).as_deref(), Some("data:1"));
        assert_eq!(f.next_response(false).as_deref(), Some("data:2"));
        assert_eq!(f.next_response(false).as_deref(), Some("data:3"));
        assert!(f.is_empty());
    }

    #[test]
    fn prompt_split_across_reads_is_dropped() {
        let mut f = fb(b"data:1\n@al");
        assert_eq!(f.next_response(false).as_deref(), Some("data:1"));
        assert_eq!(f.next_response(false), None);
        f.push(b"ice@").unwrap();
        f.push(b"data:2\n@alice@").unwrap();
        assert_eq!(f.next_response(false).as_deref(), Some("data:2"));
        let mut f = fb(b"data:1\n@");
        assert_eq!(f.next_response(false).as_deref(), Some("data:1"));
        f.push(b"alice@error:AT0015-key not found\n@alice@")
            .unwrap();
        assert_eq!(
            f.next_response(false).as_deref(),
            Some("error:AT0015-key not found")
        );
    }

    #[test]
    fn waits_for_the_prompt_and_tolerates_crlf() {
        let mut f = fb(b"host:1234\r\n");
        assert_eq!(f.next_response(false), None);
        f.push(b"@").unwrap();
        assert_eq!(f.next_response(false).as_deref(), Some("host:1234"));
        let mut f = fb(b"error:AT0012-Inbound connection limit exceeded\n");
        assert_eq!(
            f.next_response(true).as_deref(),
            Some("error:AT0012-Inbound connection limit exceeded")
        );
    }

    #[test]
    fn pol_reply_has_no_newline() {
        let mut f = fb(b"@bob@");
        assert_eq!(f.next_pol_reply(false).as_deref(), Some("@bob@"));
        let mut f = fb(b"@bo");
        assert_eq!(f.next_pol_reply(false), None);
        let mut f = fb(b"error:AT0401-Exception: Pol Authentication Failed\n@");
        assert_eq!(
            f.next_pol_reply(false).as_deref(),
            Some("error:AT0401-Exception: Pol Authentication Failed")
        );
    }

    #[test]
    fn monitor_lines() {
        let mut f =
            fb(b"notification: {\"id\":\"1\"}\n\ndata:ok\n@bob@notification: {}\r\npartial");
        assert_eq!(
            f.next_line().as_deref(),
            Some("notification: {\"id\":\"1\"}")
        );
        assert_eq!(f.next_line().as_deref(), Some("data:ok"));
        assert_eq!(f.next_line().as_deref(), Some("@bob@notification: {}"));
        assert_eq!(f.next_line(), None);
        assert_eq!(f.take_rest(), "partial");
    }

    #[test]
    fn greeting_and_limits() {
        let mut f = fb(b"@");
        assert_eq!(f.take_greeting(), Some(Ok(())));
        assert_eq!(f.take_greeting(), None);
        let mut f = fb(b"garbage");
        assert_eq!(f.take_greeting(), Some(Err("garbage".into())));
        let mut f = FrameBuffer::new(4);
        assert_eq!(f.push(b"12345"), Err(Overflow));
    }

    fn wire(payloads: &[(String, u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (payload, prompt) in payloads {
            out.extend_from_slice(payload.as_bytes());
            out.extend_from_slice(match prompt % 3 {
                0 => b"\n@".as_slice(),
                1 => b"\n@alice@",
                _ => b"\r\n@bob\xf0\x9f\x9b\xa0@",
            });
        }
        out
    }

    proptest::proptest! {
        /// However TLS records cut the stream, the same responses come out.
        #[test]
        fn framing_is_independent_of_record_boundaries(
            payloads in proptest::collection::vec(
                ("(data|error):[a-zA-Z0-9 :@{}\"\\[\\],.=/+-]{0,40}", 0u8..3),
                1..8,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let bytes = wire(&payloads);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut f = FrameBuffer::new(1 << 20);
            let mut frames = Vec::new();
            let mut from = 0;
            for cut in cuts {
                f.push(&bytes[from..cut]).unwrap();
                from = cut;
                while let Some(frame) = f.next_response(false) {
                    frames.push(frame);
                }
            }
            let want: Vec<String> = payloads.into_iter().map(|(p, _)| p).collect();
            proptest::prop_assert_eq!(frames, want);
        }

        /// Arbitrary bytes never panic any extractor.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), eof: bool) {
            let mut f = FrameBuffer::new(1 << 20);
            f.push(&bytes).unwrap();
            let _ = f.take_greeting();
            while f.next_response(eof).is_some() {}
            let _ = f.next_pol_reply(eof);
            while f.next_line().is_some() {}
            let _ = f.take_rest();
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut f = fb(b"data:\xff\n@");
        assert_eq!(f.next_response(false).as_deref(), Some("data:\u{fffd}"));
    }
}
