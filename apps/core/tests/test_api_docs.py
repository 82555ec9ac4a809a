"""The API docs a client developer reads: operations grouped by resource, each with a summary, and
an example for every request body."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.core.http.navigation import site_name

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def operations(django_db_blocker):
    with django_db_blocker.unblock():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_operations_are_grouped_by_the_resource_in_their_path(operations):
    for name, operation in operations.items():
        resource = name.split(" ")[1].split("/")[3]
        assert operation["tags"] == [resource], name


def test_every_operation_has_a_summary(operations):
    missing = [name for name, operation in operations.items() if not operation.get("summary")]
    assert missing == []


def test_every_request_body_has_an_example(operations):
    missing = [
        name
        for name, operation in operations.items()
        if "requestBody" in operation
        and not any("examples" in body for body in operation["requestBody"]["content"].values())
    ]
    assert missing == []


def test_every_error_response_shows_an_example_of_the_error_shape(operations):
    for name, operation in operations.items():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                example = response["content"]["application/json"]["example"]
                assert set(example) == {"error", "request_id"}, (name, status)
                assert {"code", "message"} <= set(example["error"]), (name, status)


def test_the_docs_introduction_states_the_error_shape_and_how_to_sign_in(django_db_blocker):
    with django_db_blocker.unblock():
        description = SchemaGenerator().get_schema(request=None, public=True)["info"]["description"]
    assert '"request_id"' in description
    assert '"fields"' in description
    assert "Authorization: Token" in description


def test_the_docs_are_titled_with_the_projects_name_as_its_pages_show_it():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["info"]["title"] == f"{site_name()} API"
