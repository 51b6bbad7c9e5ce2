//! Customers type on phones: "dashbord", "subscripton", "verifcation". A typo in the key word
//! costs keyword search the term entirely and splits the word into odd WordPieces for the
//! encoder, so the question is searched and embedded with such words corrected against the words
//! of the knowledge base itself (the customer's message is stored and shown as written).
//!
//! A word is left alone when the base uses it, when it is an English word (a whole word of the
//! sentence encoder's WordPiece vocabulary, about 20,000 of them, so nothing is downloaded), or
//! when it is shorter than four letters, carries digits or inner capitals (E31, 2FA, iOS), sits
//! in a link or an e-mail address. Any other word is replaced by the base word closest to it by
//! Damerau-Levenshtein distance: 1 for words of four to seven letters, up to 2 from eight;
//! among equally close words the one the base uses most. Nothing that close: left alone.
//!
//! The base's words are scanned by length bucket (only words within the distance in length), and
//! only for the few words of a message that are not known, so a turn costs microseconds to a
//! couple of milliseconds (docs/EVALUATION.md, "Typos").

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use super::Article;

/// Shorter words are never corrected: too many real words sit one edit apart.
const SHORTEST: usize = 4;
/// From this length a word may be two edits from the base word it is corrected to.
const TWO_EDITS_FROM: usize = 8;
/// Longer words are not indexed or corrected (no English word is this long; codes and hashes).
const LONGEST: usize = 30;

/// The English words the corrector trusts: whole words of a WordPiece vocabulary.
#[derive(Debug, Default)]
pub struct English {
    words: HashSet<String>,
}

impl English {
    /// The whole words (no `##` continuation pieces, no `[CLS]`-style tokens) of the WordPiece
    /// vocabulary at `vocab` (`vocab.txt`, one token a line).
    pub fn load(vocab: &Path) -> std::io::Result<Self> {
        Ok(Self::from_tokens(std::fs::read_to_string(vocab)?.lines()))
    }

    /// The whole words among `tokens`.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        let words = tokens
            .into_iter()
            .map(str::trim)
            .filter(|t| t.len() > 1 && t.bytes().all(|b| b.is_ascii_lowercase()))
            .map(str::to_owned)
            .collect();
        Self { words }
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// No words: the vocabulary could not be read.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }
}

/// The corrector for one state of a knowledge base: its words with how often it uses them.
#[derive(Debug, Default)]
pub struct Speller {
    counts: HashMap<String, u32>,
    /// Base words by length in bytes (all ASCII), with their counts and letter masks.
    by_length: Vec<Vec<(String, u32, u32)>>,
    english: Arc<English>,
}

impl Speller {
    /// The words of `articles` (titles, headings, tags, text); `english` the words trusted as
    /// they are. With no English words at all (vocabulary missing) nothing is corrected: every
    /// word outside the base would look like a typo.
    pub fn build<'a>(articles: impl Iterator<Item = &'a Article>, english: Arc<English>) -> Self {
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut add = |text: &str| {
            for word in text
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() >= 3 && w.len() <= LONGEST)
            {
                *counts.entry(word.to_ascii_lowercase()).or_default() += 1;
            }
        };
        for a in articles {
            add(&a.title);
            for t in &a.tags {
                add(t);
            }
            for s in &a.sections {
                for h in &s.heading_path {
                    add(h);
                }
                add(&s.text);
            }
        }
        let mut by_length: Vec<Vec<(String, u32, u32)>> = vec![Vec::new(); LONGEST + 1];
        for (w, &n) in &counts {
            by_length[w.len()].push((w.clone(), n, letters(w.as_bytes())));
        }
        for bucket in &mut by_length {
            // Most used first, then alphabetical: the first closest word found is the one kept.
            bucket.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        Self {
            counts,
            by_length,
            english,
        }
    }

    /// Distinct words of the base.
    pub fn words(&self) -> usize {
        self.counts.len()
    }

    /// `text` with its misspelt words replaced (see the module documentation); borrowed
    /// unchanged when nothing was replaced.
    pub fn correct<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.english.is_empty() || self.counts.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut copied = 0;
        let mut at = 0;
        for token in text.split_inclusive(char::is_whitespace) {
            let start = at;
            at += token.len();
            if is_address(token) {
                continue;
            }
            for (offset, word) in words_in(token) {
                let Some(fixed) = self.fix(word) else {
                    continue;
                };
                let from = start + offset;
                out.push_str(&text[copied..from]);
                out.push_str(&fixed);
                copied = from + word.len();
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// The correction of one word, in its case, if it needs one and one is close enough.
    fn fix(&self, word: &str) -> Option<String> {
        if word.len() < SHORTEST || word.len() > LONGEST {
            return None;
        }
        let upper = word.bytes().all(|b| b.is_ascii_uppercase());
        if !upper && word.bytes().skip(1).any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let lower = word.to_ascii_lowercase();
        if self.known(&lower) {
            return None;
        }
        let best = self.closest(&lower)?;
        Some(if upper {
            best.to_ascii_uppercase()
        } else if word.as_bytes()[0].is_ascii_uppercase() {
            let mut c = best.to_owned();
            c[..1].make_ascii_uppercase();
            c
        } else {
            best.to_owned()
        })
    }

    fn known(&self, lower: &str) -> bool {
        let known = |w: &str| self.counts.contains_key(w) || self.english.contains(w);
        // A plural the vocabulary lacks ("dashboards") is as good as its singular.
        known(lower) || lower.strip_suffix('s').is_some_and(known)
    }

    /// The base word closest to `lower` within its allowed distance, most used first.
    fn closest(&self, lower: &str) -> Option<&str> {
        let limit = if lower.len() >= TWO_EDITS_FROM { 2 } else { 1 };
        let mut best: Option<(usize, u32, &str)> = None;
        let mask = letters(lower.as_bytes());
        let mut rows = Rows::default();
        let lengths = lower.len().saturating_sub(limit).max(3)..=(lower.len() + limit).min(LONGEST);
        for bucket in lengths.map(|n| &self.by_length[n]) {
            for (candidate, count, theirs) in bucket {
                let within = best.map_or(limit, |(d, _, _)| d);
                // Each letter one word has and the other lacks takes an edit of its own: most
                // words are ruled out here, without the distance.
                let (missing, extra) =
                    ((mask & !theirs).count_ones(), (theirs & !mask).count_ones());
                if missing.max(extra) as usize > within {
                    continue;
                }
                let Some(d) = rows.distance(lower.as_bytes(), candidate.as_bytes(), within) else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((bd, bc, bw)) => {
                        d < bd || (d == bd && (*count > bc || (*count == bc && &**candidate < bw)))
                    }
                };
                if better {
                    best = Some((d, *count, candidate));
                }
            }
        }
        best.map(|(_, _, w)| w)
    }
}

/// A link, an e-mail address or a domain: never corrected.
fn is_address(token: &str) -> bool {
    let t = token.trim();
    let lower = t.to_ascii_lowercase();
    lower.contains("://")
        || lower.starts_with("www.")
        || t.contains('@')
        || t.contains('/')
        || t.as_bytes()
            .windows(3)
            .any(|w| w[0].is_ascii_alphanumeric() && w[1] == b'.' && w[2].is_ascii_alphanumeric())
}

/// The runs of ASCII letters in `token` that stand alone as words (not glued to digits, other
/// letters, apostrophes or underscores), with their byte offsets.
fn words_in(token: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = token.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let glued = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'\'' || b >= 0x80;
        let before = start.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i).copied();
        if !before.is_some_and(glued) && !after.is_some_and(glued) {
            runs.push((start, &token[start..i]));
        }
    }
    runs.into_iter()
}

/// The letters a word uses, one bit each (`a` to `z`).
fn letters(word: &[u8]) -> u32 {
    word.iter()
        .filter(|b| b.is_ascii_lowercase())
        .fold(0, |m, b| m | 1 << (b - b'a'))
}

/// The distance's three rows, kept between calls.
#[derive(Default)]
struct Rows {
    before: Vec<usize>,
    previous: Vec<usize>,
    current: Vec<usize>,
}

impl Rows {
    /// Damerau-Levenshtein distance (optimal string alignment) between `a` and `b` when it is at
    /// most `limit`, else `None`; stops as soon as a whole row exceeds the limit.
    fn distance(&mut self, a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
        if a.len().abs_diff(b.len()) > limit {
            return None;
        }
        let width = b.len() + 1;
        let mut before = std::mem::take(&mut self.before);
        let mut previous = std::mem::take(&mut self.previous);
        let mut current = std::mem::take(&mut self.current);
        before.clear();
        before.resize(width, 0);
        previous.clear();
        previous.extend(0..width);
        current.clear();
        current.resize(width, 0);
        let mut result = None;
        for i in 1..=a.len() + 1 {
            if i > a.len() {
                result = Some(previous[b.len()]).filter(|&d| d <= limit);
                break;
            }
            current[0] = i;
            let mut row_min = i;
            for j in 1..width {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut d = (previous[j] + 1)
                    .min(current[j - 1] + 1)
                    .min(previous[j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d = d.min(before[j - 2] + 1);
                }
                current[j] = d;
                row_min = row_min.min(d);
            }
            if row_min > limit {
                break;
            }
            std::mem::swap(&mut before, &mut previous);
            std::mem::swap(&mut previous, &mut current);
        }
        (self.before, self.previous, self.current) = (before, previous, current);
        result
    }
}

/// [`Rows::distance`] with rows of its own.
#[cfg(test)]
fn distance(a: &[u8], b: &[u8], limit: usize) -> Option<usize> {
    Rows::default().distance(a, b, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speller(text: &str) -> Speller {
        let article = super::super::parse("a.md", &format!("# Help\n\n{text}\n")).unwrap();
        let english = English::from_tokens(
            "the my how do i to cancel can where is subscription account will invoice ##ing [CLS] email"
                .split(' '),
        );
        Speller::build(std::iter::once(&article), Arc::new(english))
    }

    #[test]
    fn distance_counts_edits_and_stops_at_the_limit() {
        assert_eq!(distance(b"subscripton", b"subscription", 2), Some(1));
        assert_eq!(distance(b"dashbaord", b"dashboard", 1), Some(1));
        assert_eq!(distance(b"verifcaton", b"verification", 2), Some(2));
        assert_eq!(distance(b"verifcaton", b"verification", 1), None);
        assert_eq!(distance(b"plan", b"plain", 1), Some(1));
        assert_eq!(distance(b"abcd", b"wxyz", 2), None);
    }

    #[test]
    fn a_misspelt_word_becomes_the_base_word() {
        let s = speller("Cancel your subscription from the dashboard. Pageviews are counted.");
        assert_eq!(
            s.correct("how do i cancel my subscripton"),
            "how do i cancel my subscription"
        );
        assert_eq!(
            s.correct("where is the dashbord?"),
            "where is the dashboard?"
        );
        assert_eq!(s.correct("Dashbord pagevews"), "Dashboard pageviews");
        assert_eq!(s.correct("DASHBORD"), "DASHBOARD");
    }

    #[test]
    fn words_of_the_base_and_of_english_are_kept() {
        let s = speller("Cancel your subscription from the dashboard. Pageviews are counted.");
        for text in [
            "how do i cancel my subscription",
            "pageviews counted on the dashboards",
            "where is my invoice",
            "my account will email",
        ] {
            assert!(
                matches!(s.correct(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn codes_numbers_links_and_addresses_are_kept() {
        let s = speller(
            "Error E31 means the dashboard lost Wi-Fi. Enable 2FA. Open dashboard.example.com",
        );
        for text in [
            "my brewer shows E31",
            "dashbord31 broken",
            "turn on 2FA",
            "see https://dashbord.example.com/dashbord",
            "write to dashbord@example.com",
            "open dashbord.example.com",
            "order 123456 dashbord_id",
            "iDashbord",
        ] {
            assert!(
                matches!(s.correct(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn far_and_short_words_are_kept() {
        let s = speller("Cancel your subscription from the dashboard.");
        // Three edits from "subscription"; "frm" is too short to correct.
        assert_eq!(s.correct("subsciptn frm"), "subsciptn frm");
        // Four to seven letters: one edit only ("dshbrd" is three from "dashboard").
        assert_eq!(s.correct("yuor"), "your");
        assert_eq!(s.correct("yuorr"), "yuorr");
    }

    #[test]
    fn the_most_used_of_equally_close_words_wins() {
        let s = speller("Plans: see the plans page. A plan. Planet planet planet.");
        // "plane" is one edit from "plans", "plant"... and "planet": "planet" is used most.
        assert_eq!(s.correct("plane"), "planet");
    }

    #[test]
    fn without_english_words_nothing_is_corrected() {
        let article = super::super::parse("a.md", "# Help\n\nsubscription\n").unwrap();
        let s = Speller::build(std::iter::once(&article), Arc::new(English::default()));
        assert_eq!(s.correct("subscripton"), "subscripton");
    }
}
