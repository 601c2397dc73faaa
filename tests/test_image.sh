#!/usr/bin/env bash
# test_image.sh TEST_IMAGE TMP — PIL references for synthetic odd-size images and real photos.
set -u
TI=$1 TMP=$2
rm -rf "$TMP" && mkdir -p "$TMP/ref"
S=/usr/lib/python3/dist-packages/skimage/data
photos=()
for f in coffee.png chelsea.png astronaut.png camera.png motorcycle_left.png rocket.jpg hubble_deep_field.jpg; do
  [ -f "$S/$f" ] && photos+=("$S/$f")
done
[ ${#photos[@]} -ge 5 ] || { echo "FAIL: photographs missing (Debian package python3-skimage)"; exit 1; }
/usr/bin/python3 "$(dirname "$0")/pil_ref.py" "$TMP/ref" "${photos[@]}" || { echo "FAIL: pil_ref.py (python3-pil)"; exit 1; }
exec "$TI" "$TMP/ref" "$TMP"
