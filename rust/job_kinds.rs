//! OpenHuman's typed job kinds and payloads (its `jobs/types.rs`): the six
//! kinds its workers run, and for each the payload JSON and the dedupe key
//! it derives, so a job memtree enqueues is the job OpenHuman would have.
//! The queue itself stays string-typed ([`crate::jobs::NewJob`]); these
//! build its jobs.

use crate::error::{Error, Result};
use crate::jobs::NewJob;

/// A job kind of OpenHuman's memory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Score a chunk and extract its entities.
    ExtractChunk,
    /// Append a node to a tree's buffer.
    AppendBuffer,
    /// Seal a buffer into a summary.
    Seal,
    /// Route a node to the topic trees of its entities.
    TopicRoute,
    /// Build one day's global digest.
    DigestDaily,
    /// Seal the level-0 buffers that went stale.
    FlushStale,
}

impl JobKind {
    /// Every kind, in OpenHuman's order.
    pub const ALL: [JobKind; 6] = [
        JobKind::ExtractChunk,
        JobKind::AppendBuffer,
        JobKind::Seal,
        JobKind::TopicRoute,
        JobKind::DigestDaily,
        JobKind::FlushStale,
    ];

    /// The stored form (`"extract_chunk"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::ExtractChunk => "extract_chunk",
            JobKind::AppendBuffer => "append_buffer",
            JobKind::Seal => "seal",
            JobKind::TopicRoute => "topic_route",
            JobKind::DigestDaily => "digest_daily",
            JobKind::FlushStale => "flush_stale",
        }
    }

    /// The kind stored as `value`; an unknown one is an input error.
    pub fn parse(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| Error::invalid("kind", format!("unknown job kind {value:?}")))
    }

    /// Whether a job of this kind calls an LLM (OpenHuman throttles those).
    pub fn is_llm_bound(self) -> bool {
        matches!(
            self,
            JobKind::ExtractChunk | JobKind::Seal | JobKind::DigestDaily | JobKind::TopicRoute
        )
    }
}

/// A node of a tree, as a payload names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    /// A chunk.
    Leaf(String),
    /// A summary.
    Summary(String),
}

impl NodeRef {
    /// `{"kind":"leaf","chunk_id":…}` / `{"kind":"summary","summary_id":…}`.
    fn json(&self) -> String {
        match self {
            NodeRef::Leaf(id) => format!("{{\"kind\":\"leaf\",\"chunk_id\":{}}}", string(id)),
            NodeRef::Summary(id) => {
                format!("{{\"kind\":\"summary\",\"summary_id\":{}}}", string(id))
            }
        }
    }

    fn dedupe_fragment(&self) -> String {
        match self {
            NodeRef::Leaf(id) => format!("leaf:{id}"),
            NodeRef::Summary(id) => format!("summary:{id}"),
        }
    }

    fn id(&self) -> &str {
        match self {
            NodeRef::Leaf(id) | NodeRef::Summary(id) => id,
        }
    }
}

/// Where an append goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendTarget {
    /// The source tree of a source id.
    Source(String),
    /// A topic tree, by tree id.
    Topic(String),
}

/// One typed payload; [`Payload::new_job`] makes the job OpenHuman would
/// enqueue for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `extract_chunk`, key `extract:<chunk_id>`.
    ExtractChunk {
        /// The chunk.
        chunk_id: String,
    },
    /// `append_buffer`, key `append:<source|topic>:<id>:<node>`.
    AppendBuffer {
        /// The node appended.
        node: NodeRef,
        /// The tree it goes to.
        target: AppendTarget,
    },
    /// `seal`, key `seal:<tree_id>:<level>`.
    Seal {
        /// The tree.
        tree_id: String,
        /// The buffer's level.
        level: i64,
        /// Force the seal as of this time (a flush), ms.
        force_now_ms: Option<i64>,
    },
    /// `topic_route`, key `topic_route:<node>`.
    TopicRoute {
        /// The node routed.
        node: NodeRef,
    },
    /// `digest_daily`, key `digest_daily:<date>`.
    DigestDaily {
        /// The day, `YYYY-MM-DD`.
        date_iso: String,
    },
    /// `flush_stale`, key `flush_stale:<date>` (one flush per day).
    FlushStale {
        /// Buffers older than this many seconds are stale (OpenHuman's
        /// default when `None`).
        max_age_secs: Option<i64>,
        /// The day the flush is for, `YYYY-MM-DD`.
        date_iso: String,
    },
}

/// A JSON string literal, escaped as serde escapes it.
fn string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn opt_int(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// A `YYYY-MM-DD` date (the calendar is not checked beyond its shape).
fn check_date(date: &str) -> Result<()> {
    let b = date.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shape {
        Ok(())
    } else {
        Err(Error::invalid(
            "date_iso",
            format!("expected YYYY-MM-DD, got {date:?}"),
        ))
    }
}

fn non_empty(field: &str, value: &str) -> Result<()> {
    crate::chunk::non_empty(field, value)
}

impl Payload {
    /// The kind of job this payload is for.
    pub fn kind(&self) -> JobKind {
        match self {
            Payload::ExtractChunk { .. } => JobKind::ExtractChunk,
            Payload::AppendBuffer { .. } => JobKind::AppendBuffer,
            Payload::Seal { .. } => JobKind::Seal,
            Payload::TopicRoute { .. } => JobKind::TopicRoute,
            Payload::DigestDaily { .. } => JobKind::DigestDaily,
            Payload::FlushStale { .. } => JobKind::FlushStale,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Payload::ExtractChunk { chunk_id } => non_empty("chunk_id", chunk_id),
            Payload::AppendBuffer { node, target } => {
                non_empty("node", node.id())?;
                match target {
                    AppendTarget::Source(id) | AppendTarget::Topic(id) => non_empty("target", id),
                }
            }
            Payload::Seal {
                tree_id,
                level,
                force_now_ms,
            } => {
                non_empty("tree_id", tree_id)?;
                crate::trees::check_level("level", *level, 0)?;
                if let Some(ms) = force_now_ms {
                    crate::chunk::check_time_ms("force_now", *ms)?;
                }
                Ok(())
            }
            Payload::TopicRoute { node } => non_empty("node", node.id()),
            Payload::DigestDaily { date_iso } => check_date(date_iso),
            Payload::FlushStale {
                max_age_secs,
                date_iso,
            } => {
                if let Some(secs) = max_age_secs {
                    if *secs < 0 {
                        return Err(Error::invalid("max_age_secs", "must be >= 0"));
                    }
                }
                check_date(date_iso)
            }
        }
    }

    /// The payload JSON, field for field as OpenHuman's serde writes it.
    pub fn payload_json(&self) -> String {
        match self {
            Payload::ExtractChunk { chunk_id } => format!("{{\"chunk_id\":{}}}", string(chunk_id)),
            Payload::AppendBuffer { node, target } => {
                let target = match target {
                    AppendTarget::Source(id) => {
                        format!("{{\"kind\":\"source\",\"source_id\":{}}}", string(id))
                    }
                    AppendTarget::Topic(id) => {
                        format!("{{\"kind\":\"topic\",\"tree_id\":{}}}", string(id))
                    }
                };
                format!("{{\"node\":{},\"target\":{target}}}", node.json())
            }
            Payload::Seal {
                tree_id,
                level,
                force_now_ms,
            } => format!(
                "{{\"tree_id\":{},\"level\":{level},\"force_now_ms\":{}}}",
                string(tree_id),
                opt_int(*force_now_ms)
            ),
            Payload::TopicRoute { node } => format!("{{\"node\":{}}}", node.json()),
            Payload::DigestDaily { date_iso } => format!("{{\"date_iso\":{}}}", string(date_iso)),
            Payload::FlushStale { max_age_secs, .. } => {
                format!("{{\"max_age_secs\":{}}}", opt_int(*max_age_secs))
            }
        }
    }

    /// OpenHuman's dedupe key for this payload.
    pub fn dedupe_key(&self) -> String {
        match self {
            Payload::ExtractChunk { chunk_id } => format!("extract:{chunk_id}"),
            Payload::AppendBuffer { node, target } => match target {
                AppendTarget::Source(id) => {
                    format!("append:source:{id}:{}", node.dedupe_fragment())
                }
                AppendTarget::Topic(id) => format!("append:topic:{id}:{}", node.dedupe_fragment()),
            },
            Payload::Seal { tree_id, level, .. } => format!("seal:{tree_id}:{level}"),
            Payload::TopicRoute { node } => format!("topic_route:{}", node.dedupe_fragment()),
            Payload::DigestDaily { date_iso } => format!("digest_daily:{date_iso}"),
            Payload::FlushStale { date_iso, .. } => format!("flush_stale:{date_iso}"),
        }
    }

    /// The job OpenHuman would enqueue: kind, payload JSON and dedupe key.
    pub fn new_job(&self) -> NewJob {
        let mut job = NewJob::new(self.kind().as_str(), self.payload_json());
        job.dedupe_key = Some(self.dedupe_key());
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_llm_bound_kinds_are_openhumans() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()).ok(), Some(k));
        }
        assert!(JobKind::parse("bogus").is_err());
        let bound: Vec<_> = JobKind::ALL
            .into_iter()
            .filter(|k| k.is_llm_bound())
            .collect();
        assert_eq!(
            bound,
            [
                JobKind::ExtractChunk,
                JobKind::Seal,
                JobKind::TopicRoute,
                JobKind::DigestDaily
            ]
        );
    }

    #[test]
    fn payloads_are_serdes_json_and_keys_are_openhumans() {
        let p = Payload::AppendBuffer {
            node: NodeRef::Leaf("c1".into()),
            target: AppendTarget::Source("slack:#eng".into()),
        };
        assert_eq!(
            p.payload_json(),
            r#"{"node":{"kind":"leaf","chunk_id":"c1"},"target":{"kind":"source","source_id":"slack:#eng"}}"#
        );
        assert_eq!(p.dedupe_key(), "append:source:slack:#eng:leaf:c1");
        let p = Payload::Seal {
            tree_id: "t\"".into(),
            level: 2,
            force_now_ms: Some(5),
        };
        assert_eq!(
            p.payload_json(),
            r#"{"tree_id":"t\"","level":2,"force_now_ms":5}"#
        );
        assert_eq!(p.dedupe_key(), "seal:t\":2");
    }
}
