"""The release's DiT tensor names -> diffusers' DiTTransformer2DModel names (dit-spec.md section 2), and a diffusers
DiT set to the official semantics (section 7). Shared by the fixture scripts and the demo training's self-check."""
from diffusers import DiTTransformer2DModel


def official_semantics(model):
    """diffusers differs from the release in two places (dit-spec.md section 7); align them."""
    for blk in model.transformer_blocks:
        blk.norm1.emb.time_proj.downscale_freq_shift = 0
        blk.norm3.eps = 1e-6
    return model


def diffusers_dit(heads, head_dim, depth, latent, patch, classes, out_channels=8):
    """An (uninitialised) diffusers DiT with the official semantics, in eval mode (in training mode its label embedder
    drops labels at random)."""
    return official_semantics(DiTTransformer2DModel(
        num_attention_heads=heads, attention_head_dim=head_dim, in_channels=4, out_channels=out_channels,
        num_layers=depth, sample_size=latent, patch_size=patch, num_embeds_ada_norm=classes)).eval()


def official_to_diffusers(w):
    """A state dict with the release's names -> diffusers' names: every block gets its copy of the embedders, qkv is
    split into q, k and v. `pos_embed` (fixed) is not carried over."""
    depth = 1 + max(int(k.split(".")[1]) for k in w if k.startswith("blocks."))
    d = {}
    for p in ("weight", "bias"):
        d[f"pos_embed.proj.{p}"] = w[f"x_embedder.proj.{p}"]
        d[f"proj_out_1.{p}"] = w[f"final_layer.adaLN_modulation.1.{p}"]
        d[f"proj_out_2.{p}"] = w[f"final_layer.linear.{p}"]
    for i in range(depth):
        b, o, e = f"transformer_blocks.{i}.", f"blocks.{i}.", f"transformer_blocks.{i}.norm1.emb."
        d[e + "class_embedder.embedding_table.weight"] = w["y_embedder.embedding_table.weight"]
        for p in ("weight", "bias"):
            d[e + f"timestep_embedder.linear_1.{p}"] = w[f"t_embedder.mlp.0.{p}"]
            d[e + f"timestep_embedder.linear_2.{p}"] = w[f"t_embedder.mlp.2.{p}"]
            d[b + f"norm1.linear.{p}"] = w[o + f"adaLN_modulation.1.{p}"]
            d[b + f"attn1.to_q.{p}"], d[b + f"attn1.to_k.{p}"], d[b + f"attn1.to_v.{p}"] = w[o + f"attn.qkv.{p}"].chunk(3)
            d[b + f"attn1.to_out.0.{p}"] = w[o + f"attn.proj.{p}"]
            d[b + f"ff.net.0.proj.{p}"] = w[o + f"mlp.fc1.{p}"]
            d[b + f"ff.net.2.{p}"] = w[o + f"mlp.fc2.{p}"]
    return d
