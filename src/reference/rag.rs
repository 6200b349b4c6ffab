//! Retrieval: the help-desk corpus, its embeddings, and top-k search by cosine similarity.
//!
//! The corpus ships inside the binary (`mocks/corpus.json`), so the target works from any
//! directory; `FAULTLINE_CORPUS` points at another file.

use std::path::Path;

use serde::Deserialize;

/// The corpus shipped with the crate.
pub const EMBEDDED_CORPUS: &str = include_str!("../../mocks/corpus.json");

/// How many chunks go into each prompt.
pub const TOP_K: usize = 3;

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Chunk {
    pub id: String,
    pub title: String,
    pub text: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Corpus {
    /// The product the help desk is for, named in the system prompt.
    pub product: String,
    pub chunks: Vec<Chunk>,
}

impl Corpus {
    pub fn parse(text: &str) -> Result<Corpus, String> {
        let corpus: Corpus = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if corpus.chunks.is_empty() {
            return Err("the corpus has no chunks".into());
        }
        Ok(corpus)
    }

    /// The file at `path`, or the embedded corpus.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Corpus> {
        match path {
            None => Corpus::parse(EMBEDDED_CORPUS)
                .map_err(|e| anyhow::anyhow!("embedded corpus is invalid: {e}")),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("FAULTLINE_CORPUS={}: cannot read: {e}", path.display())
                })?;
                Corpus::parse(&text).map_err(|e| {
                    anyhow::anyhow!("FAULTLINE_CORPUS={}: invalid corpus: {e}", path.display())
                })
            }
        }
    }
}

/// The corpus with one unit-length vector per chunk.
#[derive(Clone, Debug)]
pub struct Index {
    entries: Vec<(Chunk, Vec<f32>)>,
}

impl Index {
    pub fn new(entries: Vec<(Chunk, Vec<f32>)>) -> Index {
        Index {
            entries: entries
                .into_iter()
                .map(|(chunk, v)| (chunk, normalized(v)))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `k` chunks most similar to `query`, best first.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<&Chunk> {
        let query = normalized(query.to_vec());
        let mut scored: Vec<(f32, &Chunk)> = self
            .entries
            .iter()
            .map(|(chunk, v)| (dot(&query, v), chunk))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, c)| c).collect()
    }
}

/// Scaled to length 1, so a dot product is the cosine. A zero vector stays zero (similarity 0).
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Over the shorter length: a provider that changed dimensions degrades retrieval, not the request.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &str) -> Chunk {
        Chunk {
            id: id.into(),
            title: id.into(),
            text: id.into(),
        }
    }

    #[test]
    fn embedded_corpus_parses_with_about_a_dozen_chunks() {
        let corpus = Corpus::load(None).unwrap();
        assert!((10..=16).contains(&corpus.chunks.len()));
        assert!(!corpus.product.is_empty());
    }

    #[test]
    fn top_k_ranks_by_cosine_not_by_length() {
        let index = Index::new(vec![
            (chunk("x"), vec![10.0, 0.0]),
            (chunk("diag"), vec![1.0, 1.0]),
            (chunk("y"), vec![0.0, 0.1]),
        ]);
        let ids: Vec<&str> = index
            .top_k(&[0.1, 0.9], 2)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["y", "diag"]);
    }

    #[test]
    fn top_k_returns_fewer_when_the_corpus_is_small() {
        let index = Index::new(vec![(chunk("only"), vec![1.0])]);
        assert_eq!(index.top_k(&[1.0], TOP_K).len(), 1);
    }

    #[test]
    fn a_missing_corpus_file_names_the_variable() {
        let err = Corpus::load(Some(Path::new("/nonexistent/corpus.json"))).unwrap_err();
        assert!(err.to_string().contains("FAULTLINE_CORPUS"), "{err}");
    }
}
