#!/usr/bin/env bash
# Move feedback images into the scene training split: one atomic rename per file, duplicates (same
# content hash as an image already in train) skipped, a CSV manifest of what happened per run.
# Killed at any point and run again, it loses nothing and merges nothing twice.
#
# usage: sync_feedback.sh [RUN_ID]     (FSDL_DATA_DIR must be an absolute path)
# prints a JSON summary as its last line: {"merged": N, "duplicates": N, "manifest": "..."}
set -euo pipefail
shopt -s nullglob

data=${FSDL_DATA_DIR:?FSDL_DATA_DIR must name the data folder}
case $data in
    /*) ;;
    *) echo "FSDL_DATA_DIR must be absolute, got '$data'" >&2; exit 2 ;;
esac
feedback="$data/feedback/intel_scenes"
train="$data/raw/intel_scenes/train"
manifests="$data/raw/intel_scenes/feedback_merges"
classes=(buildings forest glacier mountain sea street)
run_id=${1:-$(date -u +%Y%m%dT%H%M%SZ)}
run_id=${run_id//[^A-Za-z0-9_.-]/_}

mkdir -p "$manifests" "$feedback"
for class in "${classes[@]}"; do mkdir -p "$train/$class" "$feedback/$class"; done

# One sync at a time.
exec 9>"$manifests/.lock"
flock 9

# Leftovers of a run killed between copy and rename are incomplete copies: drop them.
find "$train" -name '.*.syncing' -type f -delete

declare -A known=()
while IFS= read -r -d '' path; do
    read -r hash _ < <(sha256sum "$path")
    known[$hash]=$path
done < <(find "$train" -mindepth 2 -maxdepth 2 -type f -not -name '.*' \
    \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) -print0)
echo "train split holds ${#known[@]} distinct images"

manifest="$manifests/$run_id.csv"
[ -f "$manifest" ] || echo "status,label,sha256,source,target" >"$manifest"
merged=0
duplicates=0
for class in "${classes[@]}"; do
    for source in "$feedback/$class"/*; do
        name=${source##*/}
        ext=${name##*.}
        ext=${ext,,}
        case $name in .*) continue ;; esac
        case $ext in jpg | jpeg | png) ;; *) echo "skipping $source: not a .jpg or .png file" >&2; continue ;; esac
        read -r hash _ < <(sha256sum "$source")
        if [ -n "${known[$hash]:-}" ]; then
            echo "duplicate,$class,$hash,$name,${known[$hash]#"$train"/}" >>"$manifest"
            rm -f -- "$source"
            duplicates=$((duplicates + 1))
            continue
        fi
        target="$train/$class/$hash.$ext"
        partial="$train/$class/.$hash.$ext.syncing"
        cp -- "$source" "$partial"
        sync -- "$partial"
        mv -f -- "$partial" "$target"
        echo "merged,$class,$hash,$name,$class/$hash.$ext" >>"$manifest"
        rm -f -- "$source"
        known[$hash]=$target
        merged=$((merged + 1))
        echo "merged $class/$name"
    done
done
sync -- "$manifest"
echo "merged $merged new images into $train ($duplicates duplicates skipped); manifest $manifest"
printf '{"merged": %d, "duplicates": %d, "manifest": "%s"}\n' "$merged" "$duplicates" "$manifest"
