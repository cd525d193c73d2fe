//! Which assets of a run can start: each asset's count of inputs not yet
//! done, and the ready ones by their place in the run's order.

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::AssetName;

/// The assets of a run and which of them can start. Finishing an asset
/// touches only its own downstream, so the time from an asset's inputs being
/// done to its start does not grow with the size of the run.
pub(crate) struct Ready {
    order: Vec<AssetName>,
    waiting_on: Vec<usize>,
    downstream: Vec<Vec<usize>>,
    position: BTreeMap<AssetName, usize>,
    ready: BTreeSet<usize>,
}

impl Ready {
    /// The assets `order` (dependencies first), each with its `inputs`;
    /// inputs outside `order` are not waited on.
    pub(crate) fn new<'a>(
        order: &[AssetName],
        inputs: impl Fn(&AssetName) -> &'a [AssetName],
    ) -> Self {
        let position: BTreeMap<AssetName, usize> = order
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        let mut waiting_on = vec![0; order.len()];
        let mut downstream = vec![Vec::new(); order.len()];
        for (i, name) in order.iter().enumerate() {
            let inputs: BTreeSet<usize> = inputs(name)
                .iter()
                .filter_map(|input| position.get(input).copied())
                .collect();
            waiting_on[i] = inputs.len();
            for input in inputs {
                downstream[input].push(i);
            }
        }
        let ready = (0..order.len()).filter(|i| waiting_on[*i] == 0).collect();
        Self {
            order: order.to_vec(),
            waiting_on,
            downstream,
            position,
            ready,
        }
    }

    /// The first ready asset in the run's order, taken off the ready set.
    pub(crate) fn next_ready(&mut self) -> Option<AssetName> {
        self.ready.pop_first().map(|i| self.order[i].clone())
    }

    /// `name` is done: its downstream waits on one input fewer.
    pub(crate) fn done(&mut self, name: &AssetName) {
        let Some(&i) = self.position.get(name) else {
            return;
        };
        for &d in &self.downstream[i] {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 {
                self.ready.insert(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<AssetName> {
        list.iter()
            .map(|n| AssetName::new(*n).expect("name"))
            .collect()
    }

    #[test]
    fn an_asset_is_ready_once_every_input_in_the_run_is_done_in_the_runs_order() {
        // raw -> (a, b) -> joined; `outside` is an input not in the run.
        let order = names(&["raw", "a", "b", "joined"]);
        let inputs: BTreeMap<AssetName, Vec<AssetName>> = [
            ("raw", names(&["outside"])),
            ("a", names(&["raw"])),
            ("b", names(&["raw", "raw"])),
            ("joined", names(&["b", "a"])),
        ]
        .into_iter()
        .map(|(n, i)| (AssetName::new(n).expect("name"), i))
        .collect();
        let mut ready = Ready::new(&order, |n| inputs[n].as_slice());
        let next = |r: &mut Ready| r.next_ready().map(|n| n.to_string());
        assert_eq!(next(&mut ready).as_deref(), Some("raw"));
        assert_eq!(next(&mut ready), None);
        ready.done(&order[0]);
        assert_eq!(next(&mut ready).as_deref(), Some("a"));
        assert_eq!(next(&mut ready).as_deref(), Some("b"));
        ready.done(&order[2]);
        assert_eq!(next(&mut ready), None, "`joined` still waits on `a`");
        ready.done(&order[1]);
        assert_eq!(next(&mut ready).as_deref(), Some("joined"));
        assert_eq!(next(&mut ready), None);
    }
}
