#!/usr/bin/env bash
# Install lakebook and run the demo pipeline (jaffle shop: ingest -> silver -> gold with data quality)
# on the embedded defaults: a local lake under lake/, SQLite metadata under .lakebook/, run records
# under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet -e .
lakebook validate
lakebook run jaffle_shop
lakebook runs --limit 3
lakebook dq results --limit 12
lakebook query "SELECT * FROM gold.daily_revenue ORDER BY order_date LIMIT 5"
echo
echo "Explore it in JupyterLab with the Lakebook sidebar: lakebook lab"
