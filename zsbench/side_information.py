"""The choices of side information a spec can make, as plain names (no torch: the spec
validator checks them without loading a model)."""

# Which side information a method entry is given (a spec's ``side_information`` key): "auto"
# everything the data set has; "class-embeddings" its class embeddings only (e.g. attributes);
# "class-sentences" Reed et al.'s class-level sentence embeddings (CUB's sent_splits.mat);
# "caption-means" class means of per-image caption embeddings; "captions" the per-image texts only.
SIDE_INFORMATION = ("auto", "class-embeddings", "class-sentences", "caption-means", "captions")
# Which images' captions may form a class's prototype (a dataset's ``prototype_captions``):
# "stage" every image of the stage, scored ones included (the paper's convention, the only one
# for unseen classes there); "unscored" no scored image: seen classes from their training images,
# unseen classes from a seeded held-out part of their images, which are then not scored.
PROTOTYPE_CAPTIONS = ("stage", "unscored")
