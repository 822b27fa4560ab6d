# shellcheck shell=bash
# PostgreSQL URLs without leaking their passwords. Source this file.
#
# pgurl_split URL PREFIX sets ${PREFIX}_CONN (the URL with the password removed: safe on a
# command line, where `ps` shows it), ${PREFIX}_PASSWORD (decoded, for PGPASSWORD, which only
# the child process sees) and ${PREFIX}_SHOWN (the URL with the password as ***, for messages).

pgurl_decode() { # percent-decoding, as libpq does for URL parts
  local s=${1//+/%2B}
  printf '%b' "${s//%/\\x}"
}

pgurl_split() {
  local url=$1 prefix=$2 scheme rest userinfo user="" password="" conn shown
  if [[ ! $url =~ ^(postgres(ql)?://)(.*)$ ]]; then
    return 1
  fi
  scheme=${BASH_REMATCH[1]}
  rest=${BASH_REMATCH[3]}
  # The user information ends at the last '@' before the host part.
  if [[ $rest =~ ^([^/?#]*)@(.*)$ ]]; then
    userinfo=${BASH_REMATCH[1]}
    rest=${BASH_REMATCH[2]}
    if [[ $userinfo == *:* ]]; then
      user=${userinfo%%:*}
      password=${userinfo#*:}
    else
      user=$userinfo
    fi
  fi
  if [ -n "$user" ]; then
    conn="$scheme$user@$rest"
    if [ -n "$password" ]; then shown="$scheme$user:***@$rest"; else shown=$conn; fi
  else
    conn="$scheme$rest"
    shown=$conn
  fi
  # A password in the query string (`?password=...`) is kept for libpq but never shown.
  shown=$(printf '%s' "$shown" | sed -E 's/([?&]password=)[^&]*/\1***/g')
  printf -v "${prefix}_CONN" '%s' "$conn"
  printf -v "${prefix}_SHOWN" '%s' "$shown"
  printf -v "${prefix}_PASSWORD" '%s' "$(pgurl_decode "$password")"
}

# pgurl_bin NAME: the PostgreSQL client NAME (pg_dump, pg_restore, psql). PG_BINDIR wins; then
# the bindir of a throwaway cluster; then PATH.
pgurl_bin() {
  local dir
  for dir in "${PG_BINDIR:-}" "${PG_THROWAWAY_BINDIR:-}"; do
    if [ -n "$dir" ] && [ -x "$dir/$1" ]; then
      echo "$dir/$1"
      return 0
    fi
  done
  command -v "$1" || {
    echo "error: $1 not found: install the PostgreSQL client (Debian: apt-get install postgresql-client) or set PG_BINDIR" >&2
    return 1
  }
}
