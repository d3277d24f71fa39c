"""The dashboard's subscribers section (issue 15): counts, search, a person's page, remove and
forget behind a confirmation, CSV upload with the CLI importer's report, and the export;
through the app in-process (httpx ASGI) on the sample folder with its issue sent.

By topic: test_access.py (who may), test_search.py (counts and search),
test_person.py (a person's page, remove, forget), test_import_export.py (upload and
export). Fixtures: conftest.py; shared addresses and helpers: helpers.py.
"""
