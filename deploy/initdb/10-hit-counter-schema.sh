#!/bin/bash
# Creates hit-counter's tables in the app user's schema on the database's first start.
#
# gvenzl/oracle-free runs the files in /container-entrypoint-initdb.d once, after it has
# created APP_USER in FREEPDB1, as the `oracle` OS user with SYSDBA rights through OS
# authentication, connected to the root container. So this switches to the pluggable
# database and to the app user's schema, then runs schema.sql (mounted beside, not in,
# the init folder: a *.sql file there would run in the root container).
#
# The image executes this file when it is executable and sources it otherwise, so it
# never calls `exit`. A failure stops the container's first start, loudly, and leaves
# no marker; the marker tells the compose healthcheck that the tables exist, because
# the image's own healthcheck.sh turns healthy before init scripts have finished.
set -Eeuo pipefail

: "${APP_USER:?APP_USER must name the app user (the image creates it in FREEPDB1)}"

sqlplus -s / as sysdba <<SQL
WHENEVER SQLERROR EXIT SQL.SQLCODE
WHENEVER OSERROR EXIT FAILURE
SET DEFINE OFF
ALTER SESSION SET CONTAINER = ${HIT_COUNTER_PDB:-FREEPDB1};
ALTER SESSION SET CURRENT_SCHEMA = ${APP_USER};
@${HIT_COUNTER_SCHEMA_FILE:-/opt/hit-counter/schema.sql}
EXIT
SQL

touch "${ORACLE_BASE:-/opt/oracle}/oradata/.hit-counter-schema-applied"
echo "hit-counter: schema applied in ${APP_USER}@${HIT_COUNTER_PDB:-FREEPDB1}"
