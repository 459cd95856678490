"""The article state machine's pure rule and request model (no AWS)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.content import articles

ALLOWED = {
    ("generate", "DRAFT"),
    ("generate", "PUBLISHED"),
    ("generate", "ARCHIVED"),
    ("publish", "DRAFT"),
    ("publish", "ARCHIVED"),
    ("archive", "DRAFT"),
    ("archive", "PUBLISHED"),
}


@pytest.mark.parametrize("action", sorted(articles.TRANSITIONS))
@pytest.mark.parametrize("status", articles.STATUSES)
def test_the_transition_table(action, status):
    expected = (action, status) in ALLOWED
    assert articles.check_transition(action, status, has_content=True) is expected


@pytest.mark.parametrize("action", sorted(articles.TRANSITIONS))
def test_nothing_starts_while_processing(action):
    assert not articles.check_transition(action, "PROCESSING", has_content=True)


def test_publishing_needs_content():
    assert not articles.check_transition("publish", "ARCHIVED", has_content=False)
    assert articles.check_transition("archive", "DRAFT", has_content=False)


def test_every_transition_leads_to_a_known_status():
    for sources, target in articles.TRANSITIONS.values():
        assert sources <= set(articles.STATUSES) and target in articles.STATUSES


def test_a_new_article_is_trimmed_and_its_keywords_deduplicated():
    data = articles.NewArticle.model_validate({"title": "  T  ", "topic": " x ", "keywords": [" a", "a ", "b"]})
    assert (data.title, data.topic, data.keywords) == ("T", "x", ["a", "b"])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"title": " ", "topic": "x"}, "title"),
        ({"title": "x" * 201, "topic": "x"}, "title"),
        ({"title": "t", "topic": "x" * 501}, "topic"),
        ({"title": "t", "topic": "x", "keywords": ["k"] * 21}, "keywords"),
        ({"title": "t", "topic": "x", "keywords": ["   "]}, "keywords"),
        ({"title": "t", "topic": "x", "keywords": ["k" * 51]}, "keywords"),
        ({"title": "t", "topic": "x", "extra": 1}, "extra"),
    ],
)
def test_bad_articles_name_the_field(body, field):
    with pytest.raises(ValidationError) as info:
        articles.NewArticle.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field
