"""Text or one photo to an AR asset: Shap-E through diffusers, optional score-distillation refinement,
then recon's clean -> UV -> bake -> export path."""
