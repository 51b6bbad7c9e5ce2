//! Readers for the benchmark files in `../shared/data`, and embedding of their texts through the
//! on-disk cache (a second `eval` run encodes nothing).

use std::path::Path;

use anyhow::Context;

use crate::nlu::{Embedding, EmbeddingCache, Encoded, Encoder};

/// Labelled texts.
#[derive(Debug, Clone, Default)]
pub struct Labelled {
    /// The texts.
    pub texts: Vec<String>,
    /// One label per text.
    pub labels: Vec<String>,
}

impl Labelled {
    /// Keeps the first `n` rows (all when `None`), spread over the file: every k-th row, so a
    /// quick run still sees every class.
    pub fn sample(mut self, n: Option<usize>) -> Self {
        let Some(n) = n.filter(|&n| n < self.texts.len() && n > 0) else {
            return self;
        };
        let step = self.texts.len() as f64 / n as f64;
        let keep: Vec<usize> = (0..n).map(|i| (i as f64 * step) as usize).collect();
        self.texts = keep.iter().map(|&i| self.texts[i].clone()).collect();
        self.labels = keep.iter().map(|&i| self.labels[i].clone()).collect();
        self
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

/// BANKING77 `train.csv` / `test.csv` (`text,category`).
pub fn banking77(data: &Path, split: &str) -> anyhow::Result<Labelled> {
    let path = data.join("banking77").join(format!("{split}.csv"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Labelled::default();
    for (i, row) in parse_csv(&text).into_iter().enumerate().skip(1) {
        let [text, label] = <[String; 2]>::try_from(row).map_err(|r| {
            anyhow::anyhow!(
                "{}:{}: expected 2 fields, got {}",
                path.display(),
                i + 1,
                r.len()
            )
        })?;
        out.texts.push(text);
        out.labels.push(label);
    }
    Ok(out)
}

/// One split of CLINC150 `data_full.json` (`train`, `val`, `test`, `oos_train`, `oos_val`,
/// `oos_test`); out-of-scope rows are labelled `oos`.
pub fn clinc150(data: &Path, split: &str) -> anyhow::Result<Labelled> {
    let path = data.join("clinc150").join("data_full.json");
    let file: std::collections::HashMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    let rows = file
        .get(split)
        .with_context(|| format!("{} has no split {split}", path.display()))?;
    Ok(Labelled {
        texts: rows.iter().map(|(t, _)| t.clone()).collect(),
        labels: rows.iter().map(|(_, l)| l.clone()).collect(),
    })
}

/// GoEmotions emotions that make a customer "upset".
pub const UPSET_EMOTIONS: [&str; 5] = [
    "anger",
    "annoyance",
    "disappointment",
    "disapproval",
    "disgust",
];

/// One split of GoEmotions (`train`, `dev`, `test`), labelled `upset` when any of the comment's
/// emotions is in [`UPSET_EMOTIONS`], else `calm`.
pub fn goemotions(data: &Path, split: &str) -> anyhow::Result<Labelled> {
    let dir = data.join("goemotions").join("data").join("original");
    let names: Vec<String> = std::fs::read_to_string(dir.join("labels.txt"))
        .with_context(|| format!("reading {}", dir.join("labels.txt").display()))?
        .lines()
        .map(str::to_owned)
        .collect();
    let upset: Vec<usize> = UPSET_EMOTIONS
        .iter()
        .filter_map(|e| names.iter().position(|n| n == e))
        .collect();
    let path = dir.join(format!("{split}.tsv"));
    let mut out = Labelled::default();
    for line in std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
    {
        let mut fields = line.split('\t');
        let (Some(text), Some(ids)) = (fields.next(), fields.next()) else {
            continue;
        };
        let is_upset = ids
            .split(',')
            .filter_map(|id| id.trim().parse::<usize>().ok())
            .any(|id| upset.contains(&id));
        out.texts.push(text.to_owned());
        out.labels
            .push(if is_upset { "upset" } else { "calm" }.to_owned());
    }
    Ok(out)
}

/// Embeds `texts` through `cache`, in chunks, saying how far it got on stderr.
pub fn embed(
    encoder: &Encoder,
    cache: &EmbeddingCache,
    what: &str,
    texts: &[String],
) -> anyhow::Result<Vec<Embedding>> {
    let mut out = Vec::with_capacity(texts.len());
    let mut encoded = 0;
    for chunk in texts.chunks(512) {
        let (vectors, fresh) = cache.embed_blocking(encoder, chunk)?;
        encoded += fresh;
        out.extend(vectors);
        if encoded > 0 {
            eprint!("\r  embedding {what}: {}/{}", out.len(), texts.len());
        }
    }
    if encoded > 0 {
        eprintln!();
    }
    Ok(out)
}

/// Encodes `texts` with both their vectors (the support signals read the middle layer's too),
/// with progress on stderr. Not cached: the cache keeps sentence embeddings only.
pub fn embed_full(encoder: &Encoder, what: &str, texts: &[String]) -> anyhow::Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(512) {
        out.extend(encoder.embed_blocking_full(chunk.to_vec())?);
        eprint!("\r  encoding {what}: {}/{}", out.len(), texts.len());
    }
    if !texts.is_empty() {
        eprintln!();
    }
    Ok(out)
}

/// A CSV reader for the benchmark files: comma-separated, fields optionally in double quotes with
/// `""` for a quote inside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::parse_csv;

    #[test]
    fn csv_quotes_commas_and_doubled_quotes() {
        let rows = parse_csv("text,category\n\"a, \"\"b\"\"\",x\r\nplain,y\n");
        assert_eq!(rows[1], vec!["a, \"b\"".to_owned(), "x".to_owned()]);
        assert_eq!(rows[2], vec!["plain".to_owned(), "y".to_owned()]);
        assert_eq!(rows.len(), 3);
    }
}
