#!/bin/sh
# A naive censorship checker: one dig and one curl per endpoint, no control of any kind.
#
# It is the kind of script many people write first, kept here to show what `blockprobe lab check`
# catches: it never compares with a control resolver, a benign site or an uncensored vantage
# point, tries once, and measures no speed. Its output is one tab-separated line per endpoint:
#
#   URL  DNS_STATUS  ADDRESS  CURL_EXIT  HTTP_CODE  TIME_CONNECT  TIME_APPCONNECT
#
# naive_adapter.py turns those lines into the verdict contract. It reads the lab's facts from the
# environment (`blockprobe lab env`): BLOCKPROBE_RESOLVER, BLOCKPROBE_ENDPOINTS, BLOCKPROBE_CA_FILE.
set -u
: "${BLOCKPROBE_RESOLVER:?run me through blockprobe lab check, or export blockprobe lab env}"
: "${BLOCKPROBE_ENDPOINTS:?}"
: "${BLOCKPROBE_CA_FILE:?}"

for url in $(echo "$BLOCKPROBE_ENDPOINTS" | tr ',' ' '); do
  host=$(echo "$url" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
  case "$url" in https://*) port=443 ;; *) port=80 ;; esac

  # One DNS query to the ISP's resolver. dig exits 9 when no answer came back.
  answer=$(dig +tries=1 +time=2 "@$BLOCKPROBE_RESOLVER" "$host" A 2>/dev/null)
  if [ $? -eq 9 ]; then status=TIMEOUT; else
    status=$(echo "$answer" | sed -nE 's/.*status: ([A-Z]+).*/\1/p' | head -n1)
  fi
  address=$(echo "$answer" | awk '$4 == "A" { print $5; exit }')
  if [ "$status" != NOERROR ] || [ -z "$address" ]; then
    printf '%s\t%s\t-\t-\t-\t-\t-\n' "$url" "${status:-ERROR}"
    continue
  fi

  # One request to the address the resolver gave, trusting the lab's CA.
  timing=$(curl -sS -o /dev/null --max-time 6 --connect-timeout 3 \
    --cacert "$BLOCKPROBE_CA_FILE" --resolve "$host:$port:$address" \
    -w '%{http_code}\t%{time_connect}\t%{time_appconnect}' "$url" 2>/dev/null)
  code=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$url" "$status" "$address" "$code" "$timing"
done
