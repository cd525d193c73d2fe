"""Writes unused-dictionary-values.parquet: a text column whose dictionary page
holds values no row uses (Arrow C++ writes a dictionary array's dictionary
whole; arrow-rs and a plain pyarrow string column keep only used values).

    python make_unused_dictionary.py   # needs pyarrow
"""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

tree = pa.DictionaryArray.from_arrays(
    pa.array([0, 2, 0, None, 2], pa.int32()),
    pa.array(["ash", "birch", "cedar", "douglas fir"]),
)
table = pa.table({"id": pa.array([1, 2, 3, 4, 5], pa.int64()), "tree": tree})
pq.write_table(table, Path(__file__).with_name("unused-dictionary-values.parquet"))
