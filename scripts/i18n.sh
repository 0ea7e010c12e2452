#!/usr/bin/env bash
# Translation catalogs: extract every _("...") into locale/luciddx.pot, merge it into each language's .po
# (new strings appear there untranslated: translate them with docs/glossary.md), then compile the .mo files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=".venv/bin/pybabel"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"  # babel.cfg names our JSON extractor, core.i18n_extract
$PYBABEL extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 --no-location --sort-output \
  --project LucidDx -o locale/luciddx.pot .
for po in locale/*/LC_MESSAGES/luciddx.po; do
  lang=$(basename "$(dirname "$(dirname "$po")")")
  $PYBABEL update -i locale/luciddx.pot -d locale -D luciddx -l "$lang" --no-fuzzy-matching
done
$PYBABEL compile -d locale -D luciddx --statistics
