//! The §1.3 normalisation, applied before both routing and parsing.

/// The §1.3 normalisation: trim; lower-case the verb (text before the first `:`, Unicode
/// lower case like Dart's `toLowerCase`) and drop its spaces (only U+0020, as the reference);
/// a command without any `:` is lower-cased entirely.
pub fn normalise(line: &str) -> String {
    let t = line.trim();
    match t.split_once(':') {
        Some((verb, rest)) => {
            let head: String = verb.chars().filter(|c| *c != ' ').collect();
            let mut s = head.to_lowercase();
            s.push(':');
            s.push_str(rest);
            s
        }
        None => t.to_lowercase(),
    }
}
