"""Templates: errors that name file and line, a folder's templates overriding the package's,
autoescaping of article fields; and the theme's colours staying readable for any brand colour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import PipelineError, TemplateError
from pipeline.render import Theme, contrast
from tests.render.render_helpers import _article, _markup, _render

# -- templates ------------------------------------------------------------------------------


def test_template_syntax_error_names_file_and_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    broken = tmp_path / "templates" / "newsletter.mjml"
    broken.write_text("<mjml>\n<mj-body>\n{% if nav %}\n</mj-body>\n</mjml>\n", encoding="utf-8")
    local = settings.model_copy(update={"root": tmp_path})
    with pytest.raises(TemplateError) as caught:
        _render(local)
    assert isinstance(caught.value, PipelineError) and isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert f"{broken}:" in message
    assert re.search(r"newsletter\.mjml:\d+: ", message)


def test_undefined_variable_names_file_and_line(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.txt").write_text(
        "ok\n{{ no_such_thing }}\n", encoding="utf-8"
    )
    with pytest.raises(TemplateError, match=r"newsletter\.txt:2: .*no_such_thing"):
        _render(settings.model_copy(update={"root": tmp_path}))


def test_invalid_mjml_is_a_template_error(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.mjml").write_text("<mjml><mj-body>", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"newsletter\.mjml"):
        _render(settings.model_copy(update={"root": tmp_path}))


def test_folder_templates_override_the_package_file_by_file(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "newsletter.txt").write_text(
        "Custom {{ title }} {{ unsubscribe_url }}\n", encoding="utf-8"
    )
    issue = _render(settings.model_copy(update={"root": tmp_path}))
    assert issue.text == "Custom Plain Article %%unsubscribe_url%%\n"
    assert "Hi %%first_name%%," in issue.html  # the package's MJML still applies


def test_missing_template_dir_falls_back_to_the_package_design(
    settings: Settings, tmp_path: Path
) -> None:
    issue = _render(settings.model_copy(update={"root": tmp_path}))
    assert "Unsubscribe: %%unsubscribe_url%%" in issue.text


def test_html_template_autoescapes_article_fields(settings: Settings) -> None:
    issue = _render(settings, _article(title='<b>Bold</b> & "quoted"'))
    assert "<b>" not in _markup(issue.html)
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; " in issue.html
    assert '<b>Bold</b> & "quoted"' in issue.text


# -- the theme's colours --------------------------------------------------------------------


@pytest.mark.parametrize("brand", ["#2f6f62", "#f5c542", "#ffffff", "#000000", "#e91e63"])
def test_theme_keeps_text_readable_for_any_brand_colour(brand: str) -> None:
    theme = Theme.from_brand(brand)
    assert contrast(theme.link, "#ffffff") >= 4.5
    assert contrast(theme.link_dark, "#1d2321") >= 4.5
    assert contrast(theme.on_brand, theme.button) >= 4.5
