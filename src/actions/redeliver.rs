//! Redelivery: the containers an earlier run committed but never delivered whole go
//! out again, first, with the next poll of their folder.
//!
//! A container counts as delivered once the response that carries it has been written
//! whole (see [`crate::state::StateStore::claim_undelivered`]). A run killed, crashed or
//! cut off by its reader after committing leaves its containers in the ledger, where
//! nobody would see them: the next poll sends each again exactly as it was stored (same
//! id, same container and artifact source data identifiers, so the platform's own
//! de-duplication absorbs a copy it did get), flagged `redelivered`.

use crate::{container::ContainerSink, state::StateStore};

/// Hand on the undelivered containers of `folder_hash`, oldest first; how many.
pub fn redeliver(
    store: &mut dyn StateStore,
    folder_hash: &str,
    containers: &mut dyn ContainerSink,
) -> Result<usize, String> {
    let ids = store
        .claim_undelivered(folder_hash)
        .map_err(|e| e.to_string())?;
    if !ids.is_empty() {
        tracing::warn!(
            "redelivering {} containers committed by an earlier run whose response was cut off",
            ids.len()
        );
    }
    let mut sent = 0;
    for &id in &ids {
        if containers.closed() {
            // They stay undelivered, for the poll after.
            break;
        }
        // One at a time from the ledger: memory stays bounded however many wait.
        let entry = store
            .container_by_id(id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("container {id} awaits redelivery but is not in the ledger"))?;
        let Some(mut container) = entry.container else {
            // Only a stateless store keeps no containers, and it has nothing to redeliver.
            continue;
        };
        container.redelivered = true;
        containers.send(container.into());
        sent += 1;
    }
    Ok(sent)
}
