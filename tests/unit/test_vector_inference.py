"""Metadata fields inferred from a first write (no server)."""

from __future__ import annotations

from sluice.vectors.inference import MAX_FIELDS, infer_fields
from sluice.vectors.schema import MetadataField


def test_strings_are_tags_and_numbers_numeric_in_first_seen_order() -> None:
    # Given the metadata of a first write
    sample = [{"lang": "fr", "year": 2020, "tags": ["a", "b"]}, {"lang": "en", "year": 2021.5, "ok": True}]
    # When fields are inferred
    inferred = infer_fields(sample, ("text", "embedding"))
    # Then strings, lists of strings and booleans are tags, numbers numeric
    assert inferred.fields == (
        MetadataField(name="lang", type="tag"),
        MetadataField(name="year", type="numeric"),
        MetadataField(name="tags", type="tag"),
        MetadataField(name="ok", type="tag"),
    )
    assert inferred.skipped == {}
    assert inferred.describe() == "lang (tag), year (numeric), tags (tag), ok (tag)"


def test_keys_that_cannot_be_fields_are_skipped_with_the_reason() -> None:
    sample = [
        {"nested": {"x": 1}, "bad-name": "x", "_id": "x", "text": "clash", "nums": [1, 2], "gone": None},
        {"mixed": 1},
        {"mixed": "one"},
        {"odd": "a"},
        {"odd": {"b": 1}},
    ]
    inferred = infer_fields(sample, ("text", "embedding"))
    # numbers mixed with strings are tags; a key sometimes a dict is no field at all; None is absence
    assert inferred.fields == (MetadataField(name="mixed", type="tag"),)
    assert inferred.skipped == {
        "nested": "not a string, number or list of strings",
        "bad-name": "not usable as a field name",
        "_id": "not usable as a field name",
        "text": "not usable as a field name",
        "nums": "not a string, number or list of strings",
        "odd": "not a string, number or list of strings",
    }
    assert "not filterable: 'nested' (not a string" in inferred.describe()


def test_a_tag_separator_no_sample_value_holds() -> None:
    # Given values holding commas (the default separator would split "Paris, France" in two)
    inferred = infer_fields([{"city": "Paris, France"}, {"city": ["Lyon", "a|b"]}], ())
    # Then the first separator none of them holds
    assert inferred.fields == (MetadataField(name="city", type="tag", separator=";"),)


def test_at_most_max_fields() -> None:
    inferred = infer_fields([{f"k{i}": i for i in range(MAX_FIELDS + 3)}], ())
    assert len(inferred.fields) == MAX_FIELDS
    assert inferred.skipped == {
        f"k{i}": f"more than {MAX_FIELDS} fields" for i in range(MAX_FIELDS, MAX_FIELDS + 3)
    }


def test_nothing_to_infer() -> None:
    assert infer_fields([], ()).fields == ()
    assert infer_fields([None, {}], ()).describe() == "none"
