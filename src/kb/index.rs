//! The keyword side of search: sections in an in-memory tantivy index, ranked by BM25 over title,
//! headings, tags and body, with English stemming and stop words removed.

use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::Article;

const ANALYZER: &str = "en_prose";

pub(super) struct LexicalIndex {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    path: Field,
    section: Field,
    title: Field,
    headings: Field,
    tags: Field,
    body: Field,
    /// Built once: the fields searched and their boosts.
    parser: QueryParser,
}

pub(super) struct Hit {
    pub path: String,
    pub section: usize,
    pub score: f32,
}

impl LexicalIndex {
    pub fn new() -> tantivy::Result<Self> {
        let mut builder = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let path = builder.add_text_field("path", STRING | STORED);
        let section = builder.add_u64_field("section", STORED);
        let title = builder.add_text_field("title", text.clone());
        let headings = builder.add_text_field("headings", text.clone());
        let tags = builder.add_text_field("tags", text.clone());
        let body = builder.add_text_field("body", text);
        let index = Index::create_in_ram(builder.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(
                StopWordFilter::new(Language::English).expect("English stop words are built in"),
            )
            .filter(Stemmer::new(Language::English))
            .build();
        index.tokenizers().register(ANALYZER, analyzer);
        let writer = index.writer_with_num_threads(1, 15_000_000)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![title, headings, tags, body]);
        parser.set_field_boost(title, 2.0);
        parser.set_field_boost(headings, 1.5);
        parser.set_field_boost(tags, 1.5);
        Ok(Self {
            parser,
            reader,
            writer: Mutex::new(writer),
            path,
            section,
            title,
            headings,
            tags,
            body,
        })
    }

    /// Replaces the sections of `upserts` and drops the articles at `removed`, then makes the change
    /// visible to searches before returning.
    pub fn update<'a>(
        &self,
        upserts: impl Iterator<Item = &'a Article>,
        removed: &[String],
    ) -> tantivy::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for path in removed {
            writer.delete_term(Term::from_field_text(self.path, path));
        }
        for article in upserts {
            writer.delete_term(Term::from_field_text(self.path, &article.path));
            let tags = article.tags.join(" ");
            for (i, s) in article.sections.iter().enumerate() {
                writer.add_document(doc!(
                    self.path => article.path.as_str(),
                    self.section => i as u64,
                    self.title => article.title.as_str(),
                    self.headings => s.heading_path.join(" "),
                    self.tags => tags.as_str(),
                    self.body => s.text.as_str(),
                ))?;
            }
        }
        writer.commit()?;
        self.reader.reload()
    }

    pub fn search(&self, query: &str, limit: usize) -> tantivy::Result<Vec<Hit>> {
        // Only words reach the parser, so customers' punctuation can never be query syntax.
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .filter(|w| !matches!(w.as_str(), "and" | "or" | "not"))
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let (query, _) = self.parser.parse_query_lenient(&words.join(" "));
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let path = doc
                .get_first(self.path)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let section = doc
                .get_first(self.section)
                .and_then(|v| v.as_u64())
                .unwrap_or_default() as usize;
            hits.push(Hit {
                path,
                section,
                score,
            });
        }
        Ok(hits)
    }
}
