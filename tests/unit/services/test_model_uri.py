"""spec.model.uri: the parser, and the CRD's rule holding the same grammar."""

import re
from pathlib import Path

import pytest
import yaml

from modelops_services.sources import uri
from modelops_services.sources.uri import ModelUri, parse

CRD = Path(__file__).resolve().parents[3] / "operator" / "modelops_operator" / "crd.yaml"

GOOD = {
    "file:///models/churn": ModelUri("file", path="/models/churn"),
    "s3://models/churn/1.0.0/": ModelUri("s3", bucket="models", prefix="churn/1.0.0/"),
    "s3://models/churn/1.0.0": ModelUri("s3", bucket="models", prefix="churn/1.0.0/"),  # always a directory
    "s3://my.bucket-1": ModelUri("s3", bucket="my.bucket-1", prefix=""),
    "models:/churn/7": ModelUri("models", name="churn", version="7"),
    "models:/churn@champion": ModelUri("models", name="churn", alias="champion"),
    "models:/fraud.v2_model@prod-eu": ModelUri("models", name="fraud.v2_model", alias="prod-eu"),
}
BAD = ["http://example.com/model", "s3://Models/churn/", "s3://ab/x", "s3://models//churn/", "models:/churn",
       "models:/churn/v7", "models:/churn@", "models:/a/b/3", "file://relative/path", "gs://bucket/x/",
       "s3://models/churn 1/", "models:/churn@1alias", ""]


@pytest.mark.parametrize("text,want", GOOD.items())
def test_accepted_forms(text, want):
    assert parse(text) == want


@pytest.mark.parametrize("text", BAD)
def test_other_forms_are_refused_with_the_accepted_ones_named(text):
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX/"):
        parse(text)


def test_a_prefix_never_reaches_a_sibling_with_the_same_start():
    assert str(parse("s3://models/model1")) == "s3://models/model1/"
    assert not "model1-old/metadata.json".startswith(parse("s3://models/model1").prefix)


def test_pinning_and_moving():
    alias = parse("models:/churn@champion")
    assert alias.moving and str(alias.at_version("4")) == "models:/churn/4"
    assert not parse("models:/churn/4").moving and parse("s3://b1b/x/").moving
    assert not parse("file:///m").remote


def _crd_uri_rule() -> str:
    doc = yaml.safe_load(CRD.read_text())
    model = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["model"]
    return model["properties"]["uri"]["x-kubernetes-validations"][0]["rule"]


def _cel_patterns(rule: str) -> list[str]:
    """The rule is a disjunction of self.matches(r'...') calls."""
    patterns = re.findall(r"self\.matches\(r'([^']*)'\)", rule)
    assert patterns and rule.count("||") == len(patterns) - 1, rule
    return patterns


def test_the_crd_holds_the_parsers_grammar():
    assert _cel_patterns(_crd_uri_rule()) == [uri.FILE.pattern, uri.S3.pattern, uri.MODELS.pattern]


@pytest.mark.parametrize("text", list(GOOD) + BAD)
def test_the_crd_accepts_exactly_what_the_parser_does(text):
    try:
        parse(text)
        ok = True
    except ValueError:
        ok = False
    # The CRD cannot see "//" inside an S3 prefix; that one the parser alone refuses.
    if text != "s3://models//churn/":
        # RE2 (CEL) and Python's re agree on these patterns: no backreferences or lookarounds.
        assert any(re.search(p, text) for p in _cel_patterns(_crd_uri_rule())) == ok, text
