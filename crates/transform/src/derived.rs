//! A declared view's `derived` features evaluated over windows computed outside
//! its SQL: after the window operator of a training set (each spine row's
//! windows), and over one entity's windows read from tiles online. Each
//! expression is SQL over the view's features — its aggregates and pivots, and
//! the derived features declared before it, as in the view's own SQL — compiled
//! once into a DataFusion physical expression and evaluated batch by batch (one
//! row online): no SQL is parsed per row or per request.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::json::writer::JsonArray;
use datafusion::arrow::json::{ReaderBuilder, WriterBuilder};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::PhysicalExpr;
use serde_json::{Map, Value};

/// A view's derived features, compiled.
#[derive(Debug)]
pub struct DerivedFeatures {
    view: String,
    /// The features the expressions read, in the view's order.
    inputs: SchemaRef,
    /// Each derived feature: its name and its expression over `inputs` and the
    /// derived features before it.
    exprs: Vec<(String, Arc<dyn PhysicalExpr>)>,
    /// `inputs` followed by the derived features.
    schema: SchemaRef,
}

impl DerivedFeatures {
    /// Compiles `derived` (name, SQL, in declaration order) of view `view` over
    /// `inputs`, its other features (name and type). An error names the view,
    /// the feature and what is wrong.
    pub fn compile(view: &str, inputs: SchemaRef, derived: &[(String, String)]) -> Result<Self> {
        let ctx = crate::session();
        let mut fields: Vec<Field> = inputs.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut exprs = vec![];
        for (name, sql) in derived {
            let fail = |e: DataFusionError| {
                DataFusionError::Plan(format!(
                    "derived feature `{name}` of view `{view}` (`{sql}`) cannot be computed over its windows: {e}\n  help: a derived feature reads the view's aggregates, pivots and the derived features before it"
                ))
            };
            let schema = Schema::new(fields.clone());
            let df_schema = DFSchema::try_from(schema.clone()).map_err(fail)?;
            let expr = ctx.parse_sql_expr(sql, &df_schema).map_err(fail)?;
            let physical = ctx.create_physical_expr(expr, &df_schema).map_err(fail)?;
            let data_type = physical.data_type(&schema).map_err(fail)?;
            fields.push(Field::new(name, data_type, true));
            exprs.push((name.clone(), physical));
        }
        Ok(DerivedFeatures {
            view: view.to_string(),
            inputs,
            exprs,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The derived features' names and types, in order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.schema.fields()[self.inputs.fields().len()..]
            .iter()
            .map(|f| f.as_ref())
    }

    /// The features the expressions read, in order.
    pub fn inputs(&self) -> &SchemaRef {
        &self.inputs
    }

    /// The derived columns over `inputs` (columns of the types of
    /// [`DerivedFeatures::inputs`], in its order).
    pub fn evaluate(&self, inputs: Vec<ArrayRef>) -> Result<Vec<ArrayRef>> {
        let rows = inputs.first().map_or(0, |c| c.len());
        let mut columns = inputs;
        let first = columns.len();
        for (i, (name, expr)) in self.exprs.iter().enumerate() {
            let schema = Arc::new(Schema::new(self.schema.fields()[..first + i].to_vec()));
            let batch = RecordBatch::try_new(schema, columns.clone())?;
            let value = expr
                .evaluate(&batch)
                .and_then(|v| v.into_array(rows))
                .map_err(|e| {
                    DataFusionError::Execution(format!(
                        "derived feature `{name}` of view `{}`: {e}",
                        self.view
                    ))
                })?;
            columns.push(value);
        }
        Ok(columns.split_off(first))
    }

    /// The derived features of one entity whose other features are `values`
    /// (JSON, by name, as the online store serves them), added to `values`.
    pub fn evaluate_json(&self, values: &mut Map<String, Value>) -> Result<()> {
        let row: Map<String, Value> = self
            .inputs
            .fields()
            .iter()
            .map(|f| {
                let v = values.get(f.name()).cloned().unwrap_or(Value::Null);
                (f.name().clone(), v)
            })
            .collect();
        let mut decoder = ReaderBuilder::new(self.inputs.clone()).build_decoder()?;
        decoder.serialize(&[row])?;
        let Some(batch) = decoder.flush()? else {
            return Ok(());
        };
        let derived = self.evaluate(batch.columns().to_vec())?;
        let schema = Arc::new(Schema::new(self.fields().cloned().collect::<Vec<_>>()));
        let out = RecordBatch::try_new(schema, derived)?;
        let mut text = Vec::with_capacity(64);
        {
            let mut writer = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut text);
            writer.write(&out)?;
            writer.finish()?;
        }
        let rows: Vec<Map<String, Value>> = serde_json::from_slice(&text)
            .map_err(|e| DataFusionError::Execution(format!("derived features' JSON: {e}")))?;
        if let Some(row) = rows.into_iter().next() {
            values.extend(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Float64Array, Int64Array};
    use datafusion::arrow::datatypes::DataType;

    use super::*;

    fn inputs() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("late_30d", DataType::Int64, true),
            Field::new("n_30d", DataType::Int64, true),
            Field::new("amount_30d", DataType::Float64, true),
        ]))
    }

    fn derived() -> Vec<(String, String)> {
        vec![
            (
                "late_share".to_string(),
                "CAST(late_30d AS DOUBLE) / nullif(n_30d, 0)".to_string(),
            ),
            (
                "late_pct".to_string(),
                "round(late_share * 100)".to_string(),
            ),
            ("spent".to_string(), "amount_30d > 10".to_string()),
        ]
    }

    #[test]
    fn derived_features_read_features_and_earlier_derived_ones() -> Result<()> {
        let d = DerivedFeatures::compile("spend", inputs(), &derived())?;
        let out = d.evaluate(vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(0), None])),
            Arc::new(Int64Array::from(vec![Some(4), Some(0), Some(3)])),
            Arc::new(Float64Array::from(vec![Some(12.5), None, Some(1.0)])),
        ])?;
        let share = out[0]
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("double");
        assert_eq!(share.value(0), 0.25);
        assert!(share.is_null(1) && share.is_null(2));
        let pct = out[1]
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("double");
        assert_eq!(pct.value(0), 25.0);

        let mut one: Map<String, Value> = serde_json::from_str(
            r#"{"late_30d": 3, "n_30d": 4, "amount_30d": 12.5, "other": "kept"}"#,
        )
        .expect("json");
        d.evaluate_json(&mut one)?;
        assert_eq!(one["late_share"], 0.75);
        assert_eq!(one["late_pct"], 75.0);
        assert_eq!(one["spent"], true);
        assert_eq!(one["other"], "kept");
        let mut empty: Map<String, Value> =
            serde_json::from_str(r#"{"late_30d": 0, "n_30d": 0, "amount_30d": null}"#)
                .expect("json");
        d.evaluate_json(&mut empty)?;
        assert_eq!(empty["late_share"], Value::Null);
        assert_eq!(empty["spent"], Value::Null);
        Ok(())
    }

    #[test]
    fn a_derived_feature_over_what_is_not_a_feature_names_the_view_and_the_feature() {
        let bad = vec![("share".to_string(), "late_30d / flights".to_string())];
        let e = DerivedFeatures::compile("spend", inputs(), &bad).expect_err("no such column");
        let text = e.to_string();
        assert!(
            text.contains("derived feature `share` of view `spend`") && text.contains("flights"),
            "{text}"
        );
    }
}
