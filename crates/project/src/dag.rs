//! The DAG of a project: dependency order, cycles, and the closure of a request.

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::AssetName;

use crate::compile::{Asset, Project};

/// Orders assets so that each comes after its inputs; on a cycle, returns one cycle.
pub(crate) fn topological_order(
    assets: &BTreeMap<AssetName, Asset>,
) -> Result<Vec<AssetName>, Vec<AssetName>> {
    let mut order = Vec::with_capacity(assets.len());
    let mut state: BTreeMap<&AssetName, u8> = BTreeMap::new(); // 1 = visiting, 2 = done
    fn visit<'a>(
        name: &'a AssetName,
        assets: &'a BTreeMap<AssetName, Asset>,
        state: &mut BTreeMap<&'a AssetName, u8>,
        stack: &mut Vec<&'a AssetName>,
        order: &mut Vec<AssetName>,
    ) -> Result<(), Vec<AssetName>> {
        match state.get(name) {
            Some(2) => return Ok(()),
            Some(_) => {
                let start = stack.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<AssetName> =
                    stack[start..].iter().map(|n| (*n).clone()).collect();
                cycle.push(name.clone());
                return Err(cycle);
            }
            None => {}
        }
        state.insert(name, 1);
        stack.push(name);
        // An input that did not compile is reported where it is defined; the
        // DAG simply does not hold it.
        for input in assets.get(name).map_or(&[][..], |a| &a.inputs) {
            if assets.contains_key(input) {
                visit(input, assets, state, stack, order)?;
            }
        }
        stack.pop();
        state.insert(name, 2);
        order.push(name.clone());
        Ok(())
    }
    for name in assets.keys() {
        visit(name, assets, &mut state, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

impl Project {
    /// `targets` and everything upstream of them, in dependency order. Unknown
    /// names are returned as the error.
    pub fn closure(&self, targets: &[String]) -> Result<Vec<AssetName>, Vec<String>> {
        if targets.is_empty() {
            return Ok(self.order.clone());
        }
        let unknown: Vec<String> = targets
            .iter()
            .filter(|t| !self.assets.keys().any(|n| n.as_str() == t.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut wanted: BTreeSet<&str> = targets.iter().map(String::as_str).collect();
        for name in self.order.iter().rev() {
            if wanted.contains(name.as_str()) {
                for input in &self.assets[name].inputs {
                    wanted.insert(input.as_str());
                }
            }
        }
        Ok(self
            .order
            .iter()
            .filter(|n| wanted.contains(n.as_str()))
            .cloned()
            .collect())
    }

    /// The asset called `name`, if the project has one.
    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.get(name)
    }
}
