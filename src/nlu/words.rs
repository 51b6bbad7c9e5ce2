//! What of a customer's message the models read: its words, without the strings that are not
//! language. Customers paste tracking links, email addresses, order references and error codes;
//! the sentence encoder and the heads on it were trained on sentences, and a pasted link can swing
//! them anywhere (a calm "where is my order https://track…" read as furious). Links and email
//! addresses are read as the words "a link" and "an email address", a very long reference number as
//! "a reference number", and a very long run of letters (keyboard mashing, a word glued to others)
//! is left out. The message itself is stored and searched by keyword unchanged.

use std::borrow::Cow;

/// Longer than any word or common reference (a UPS tracking number is 18 characters).
const LONGEST_WORD: usize = 24;

/// Punctuation that may wrap a pasted string: `(see https://…)`, `"id123",`.
fn is_wrapping(c: char) -> bool {
    matches!(
        c,
        '(' | ')'
            | '['
            | ']'
            | '<'
            | '>'
            | '{'
            | '}'
            | '"'
            | '\''
            | ','
            | '.'
            | ';'
            | ':'
            | '!'
            | '?'
    )
}

/// What one whitespace-separated token is read as: `None` to read it as it is, `Some("")` to
/// leave it out.
fn replacement(core: &str) -> Option<&'static str> {
    let lower = core.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("www.") {
        return Some("a link");
    }
    if let Some((user, domain)) = core.split_once('@') {
        if !user.is_empty() && domain.contains('.') && !domain.ends_with('.') {
            return Some("an email address");
        }
    }
    if core.chars().count() > LONGEST_WORD {
        return Some(if core.chars().any(|c| c.is_ascii_digit()) {
            "a reference number"
        } else {
            ""
        });
    }
    None
}

/// Units of time: phones glue them to their count ("20mins", "2hrs"), and [`phrase_text`] parts
/// them; a span of them followed by "ago" is past (the support cues' deadline).
pub(crate) const TIME_UNITS: &[&str] = &[
    "min", "mins", "minute", "minutes", "hr", "hrs", "hour", "hours",
];

/// The letters after a count that starts `word` ("20mins" → "mins", "28th" → "th"), if any.
fn after_count(word: &str) -> Option<&str> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    (rest.len() < word.len() && !rest.is_empty()).then_some(rest)
}

/// `word` as "count unit" when it is a count glued to a unit of time ("20mins" → "20 mins").
fn parted_time(word: &str) -> Option<(&str, &str)> {
    let unit = after_count(word).filter(|u| TIME_UNITS.contains(u))?;
    Some((&word[..word.len() - unit.len()], unit))
}

/// The identifiers in `text`: words of letters and digits together, as error codes and model
/// numbers are written ("E40", "GA4", "x200"), lower case, each once. Not a count glued to a unit
/// of time ("20mins"), an ordinal ("28th") or a time of day ("7am").
pub fn codes(text: &str) -> Vec<String> {
    const SAID: &[&str] = &["st", "nd", "rd", "th", "am", "pm"];
    let mut found: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let code = word.to_lowercase();
        let mixed =
            code.chars().any(|c| c.is_ascii_digit()) && code.chars().any(|c| c.is_alphabetic());
        let said = after_count(&code).is_some_and(|u| SAID.contains(&u) || TIME_UNITS.contains(&u));
        if mixed && !said && code.len() <= 12 && !found.contains(&code) {
            found.push(code);
        }
    }
    found
}

/// `text` in lower case for matching whole phrases: apostrophes straightened, every other mark a
/// space, spaces single, a count glued to a unit of time parted ("in 20mins" reads as "in 20
/// mins"), a space at both ends (so `" how do "` matches the words, not "show dog").
pub fn phrase_text(text: &str) -> String {
    let lower = text.to_lowercase().replace(['’', '‘', '`'], "'");
    let spaced: String = lower
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut words = String::with_capacity(spaced.len() + 2);
    for w in spaced.split_whitespace() {
        words.push(' ');
        match parted_time(w) {
            Some((count, unit)) => {
                words.push_str(count);
                words.push(' ');
                words.push_str(unit);
            }
            None => words.push_str(w),
        }
    }
    words.push(' ');
    if words.len() == 1 {
        words.push(' ');
    }
    words
}

/// Whether `phrase` (words with single spaces) is in `words` (a [`phrase_text`]) as whole words:
/// "how do" in " so how do i ", not in " show dog ". No allocation: the per-message cue lists
/// call it hundreds of times.
pub fn has_words(words: &str, phrase: &str) -> bool {
    occurs(words, phrase, true)
}

/// Whether `phrase` is in `words` (a [`phrase_text`]) from the start of a word, its endings free:
/// "review" in " leave reviews ", never in " the preview ".
pub fn has_word_start(words: &str, phrase: &str) -> bool {
    occurs(words, phrase, false)
}

fn occurs(words: &str, phrase: &str, whole: bool) -> bool {
    let Some(first) = phrase.chars().next() else {
        return false;
    };
    let mut from = 0;
    while let Some(k) = words[from..].find(phrase) {
        let at = from + k;
        let end = at + phrase.len();
        if words[..at].ends_with(' ') && (!whole || words[end..].starts_with(' ')) {
            return true;
        }
        // Occurrences may overlap (" xab ab ab " holds "ab ab" at a word start after one that
        // is not): look again one character on.
        from = at + first.len_utf8();
    }
    false
}

/// The words of `text` as the models should read them (see the module documentation); borrowed
/// unchanged when there is nothing to replace. A message of nothing but such strings is read as
/// it is: there is nothing better to read.
pub fn for_models(text: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        let core = token.trim_matches(is_wrapping);
        match replacement(core) {
            None => out.push_str(token),
            Some(words) => {
                changed = true;
                let at = token.find(core).unwrap_or(0);
                let before = &token[..at];
                let after = &token[at + core.len()..];
                if words.is_empty() {
                    // Keep the punctuation that ends a sentence, after the word before.
                    let end = after.trim_start_matches(|c| !matches!(c, '.' | '!' | '?'));
                    if !end.is_empty() {
                        out.truncate(out.trim_end().len());
                        out.push_str(end);
                    }
                } else {
                    out.push_str(before);
                    out.push_str(words);
                    out.push_str(after);
                }
            }
        }
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    let tidy = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if tidy.chars().any(char::is_alphabetic) {
        Cow::Owned(tidy)
    } else {
        Cow::Borrowed(text)
    }
}

/// A question compared case-, punctuation- and spacing-blind: "Where is my order?" and
/// "where is  my order" give the same key (the editors' report groups by it, and the bot's picks
/// find a question's lesson by it).
pub fn question_key(question: &str) -> String {
    question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words short and common enough to say nothing about what a question is about.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "anyone", "are", "as", "at",
    "be", "because", "been", "before", "but", "by", "can", "could", "did", "do", "does", "doesnt",
    "dont", "for", "from", "get", "got", "had", "has", "have", "having", "he", "her", "here", "hi",
    "him", "his", "how", "i", "if", "im", "in", "into", "is", "it", "its", "ive", "just", "me",
    "my", "need", "no", "not", "now", "of", "on", "one", "or", "our", "out", "please", "she", "so",
    "some", "still", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "to", "up", "us", "want", "was", "we", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "would", "you", "your", "yours", "hello", "thanks", "thank", "there", "way",
    "should", "than", "too", "very", "much", "many", "more", "most", "only", "own", "same", "such",
    "other", "again", "yes", "ok", "okay", "pls",
];

/// The content words of `text`: lower case, without stop words, crudely stemmed (plural `s`,
/// `ing`, `ed`), so "exporting stats" and "export stat" share both.
pub fn content_words(text: &str) -> impl Iterator<Item = String> + '_ {
    static STOP: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    let stop = STOP.get_or_init(|| STOP_WORDS.iter().copied().collect());
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| {
            let mut w = w.trim_matches('\'').to_lowercase();
            w.retain(|c| c != '\'');
            w
        })
        .filter(move |w| w.len() >= 2 && !stop.contains(w.as_str()))
        .map(stem)
}

fn stem(mut word: String) -> String {
    let n = word.len();
    for (suffix, keep) in [("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")] {
        if n > suffix.len() + 3 && word.ends_with(suffix) && !word.ends_with("ss") {
            word.truncate(n - suffix.len());
            word.push_str(keep);
            return word;
        }
    }
    word
}

/// Whether `text` asks something in words of its own: a how-to phrase anywhere in it
/// ([`super::signals::asks_how_to`]) and a content word that is not small talk's
/// ([`SMALL_TALK`]), or a question mark and two such words. "hmm ok so if i turn it on now it only
/// counts from now on?" and "thanks, does it support markdown?" do; "thanks! how are you?", "hi,
/// how's it going?", "hello? is this the support chat" and "ok great, will do" do not.
pub fn asks(text: &str) -> bool {
    static SMALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let small = SMALL.get_or_init(|| SMALL_TALK.iter().map(|w| stem((*w).to_owned())).collect());
    let needed = if super::signals::asks_how_to(text) {
        1
    } else if text.contains('?') {
        2
    } else {
        return false;
    };
    content_words(text)
        .filter(|w| !small.contains(w))
        .nth(needed - 1)
        .is_some()
}

/// Content words of greetings, thanks and chat about the chat itself: they ask nothing of the
/// knowledge base ("how's your day going?", "anybody around?", "is this the support chat?").
const SMALL_TALK: &[&str] = &[
    "hows",
    "going",
    "doing",
    "day",
    "today",
    "morning",
    "afternoon",
    "evening",
    "weekend",
    "anybody",
    "somebody",
    "someone",
    "around",
    "chat",
    "hey",
    "hello",
    "hiya",
    "thank",
    "thx",
    "ty",
    "cheers",
    "bye",
    "great",
    "cool",
    "nice",
    "awesome",
    "perfect",
    "lol",
    "haha",
    "hmm",
    "well",
    "life",
    "everything",
    "alright",
];

#[cfg(test)]
mod tests {
    use super::{asks, codes, has_word_start, has_words, phrase_text};

    #[test]
    fn a_message_asks_with_a_question_and_words_of_its_own() {
        for text in [
            "hmm ok so if i turn it on now it only counts from now on?",
            "thanks! and how do i change the delivery address",
            "is that on the free plan?",
            "thanks, does it support markdown?",
            "hi, can i get help with billing?",
            "hi, what are your support hours?",
            "perfect, can i undo it?",
            "hi, how do i delete a chat?",
        ] {
            assert!(asks(text), "{text:?}");
        }
        for text in [
            "thanks! how are you?",
            "ok great, will do",
            "hi, anyone there?",
            "thanks for the quick help with the invoice",
            "hi, how's it going?",
            "hi! how are you doing today?",
            "good morning, how are you today?",
            "hey, anybody around?",
            "hello? is this the support chat",
            "thanks, how's your weekend going?",
        ] {
            assert!(!asks(text), "{text:?}");
        }
    }

    #[test]
    fn codes_are_words_of_letters_and_digits() {
        assert_eq!(
            codes("brewer shows E40 (e40 again), GA4 and 20mins ago; 28th at 7am, 1234, v2!"),
            ["e40", "ga4", "v2"]
        );
        assert!(codes("no codes here, just 2 words").is_empty());
    }

    #[test]
    fn phrases_match_whole_words_or_word_starts_without_allocating() {
        assert_eq!(
            phrase_text("back in 20mins, it broke 2hrs ago; 2fa, e60, 5ghz, 30"),
            " back in 20 mins it broke 2 hrs ago 2fa e60 5ghz 30 "
        );
        let w = phrase_text("So, how do I leave reviews on the preview? xab ab ab");
        assert!(has_words(&w, "how do"));
        assert!(!has_words(&w, "how d"));
        assert!(!has_words(&w, "review"));
        assert!(has_word_start(&w, "review"));
        assert!(!has_word_start(&w, "view"));
        // An occurrence after one that fails its boundary, overlapping it, still counts.
        assert!(has_words(&w, "ab ab"));
        assert!(!has_words(&w, ""));
        assert!(has_words(" café crème ", "crème"));
    }
    use super::for_models;

    #[test]
    fn sentences_are_read_as_they_are() {
        for text in [
            "where is my order 1Z999AA10123456784?",
            "I ALREADY reinstalled the script!!",
            "my brewer shows E31",
            "",
        ] {
            assert!(matches!(
                for_models(text),
                std::borrow::Cow::Borrowed(t) if t == text
            ));
        }
    }

    #[test]
    fn links_and_addresses_are_read_as_words() {
        assert_eq!(
            for_models("where is my order (https://track.example.com/a8f7s6d5?x=1), thanks"),
            "where is my order (a link), thanks"
        );
        assert_eq!(
            for_models("my login is Jane.Doe+shop@mail.example.org."),
            "my login is an email address."
        );
        assert_eq!(for_models("see www.example.com/help"), "see a link");
    }

    #[test]
    fn long_strings_are_numbers_or_left_out() {
        assert_eq!(
            for_models("order ref 8f14e45fceea167a5a36dedd4bea2543 missing"),
            "order ref a reference number missing"
        );
        assert_eq!(
            for_models("where is my order averyveryveryveryveryverylongwordwithoutspaces"),
            "where is my order"
        );
        assert_eq!(
            for_models("help asdkjhaskdjhaksjdhkajshdkjashdkjahsd!"),
            "help!"
        );
        // Nothing left to read: the message as it is.
        assert_eq!(
            for_models("asdkjhaskdjhaksjdhkajshdkjashdkjahsd"),
            "asdkjhaskdjhaksjdhkajshdkjashdkjahsd"
        );
    }
}
