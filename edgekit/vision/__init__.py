"""Images and video: loading, preprocessing recipes, detection decoding, video sources, pipelines."""
