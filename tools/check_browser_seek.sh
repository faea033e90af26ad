#!/usr/bin/env bash
# Does a finished recording show its whole length and seek in Chromium? (apt install chromium)
# Usage: tools/check_browser_seek.sh VIDEO.mp4 SECONDS   -> prints "dur=<s> seeked=<s> seekable_end=<s>"
set -euo pipefail
video=$(realpath "$1"); at=${2:-10}
dir=$(mktemp -d /tmp/wv-seek.XXXXXX); trap 'rm -rf "$dir"' EXIT
ln -s "$video" "$dir/v.mp4"
cat > "$dir/page.html" <<HTML
<html><body><video id=v src="v.mp4" muted preload="auto"></video><pre id=o>no metadata</pre><script>
const v=document.getElementById('v'), o=document.getElementById('o');
v.addEventListener('loadedmetadata',()=>{ o.textContent='dur='+v.duration; v.currentTime=$at; });
v.addEventListener('seeked',()=>{ o.textContent='dur='+v.duration+' seeked='+v.currentTime+' seekable_end='+(v.seekable.length?v.seekable.end(0):-1); });
v.addEventListener('error',()=>{ o.textContent='error '+(v.error&&v.error.code); });
</script></body></html>
HTML
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --allow-file-access-from-files --virtual-time-budget=10000 --dump-dom \
    "file://$dir/page.html" 2>/dev/null | sed -n 's/.*<pre id="o">\([^<]*\).*/\1/p'
