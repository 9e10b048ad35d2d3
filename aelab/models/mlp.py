"""Fully connected autoencoders: shallow (784-32), stacked (784-300-150, 784-1000-500-250-30), tied, sparse, linear."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import MAX_PARAMETERS, Autoencoder, ModelConfig, estimate_parameters, option, register

ACTIVATIONS = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


@dataclass
class MLPConfig(ModelConfig):
    hidden: list[int] = option([], "encoder hidden layer sizes, e.g. 1000,500,250 (the decoder mirrors them)",
                               minimum=1, maximum=20000)
    activation: str = option("leaky_relu", "activation between layers", choices=ACTIVATIONS)
    init: str = option("he", "weight initialisation: He (for ReLU family) or Xavier (for sigmoid/tanh)",
                       choices=("he", "xavier", "default"))
    code_activation: str = option("none", "activation of the code layer (sigmoid for sparse codes)",
                                  choices=("none", "sigmoid", "leaky_relu", "relu", "tanh"))
    tied: bool = option(False, "decoder uses the encoder's transposed weights (biases stay separate)")
    dropout: float = option(0.0, "dropout rate on hidden layers", minimum=0.0, maximum=0.95)
    l2_weight: float = option(0.0, "L2 weight penalty coefficient", minimum=0.0, maximum=10.0)
    sparsity_target: float = option(0.05, "target mean activation of each code unit (KL sparsity)",
                                    minimum=1e-4, maximum=0.9999)
    sparsity_weight: float = option(0.0, "weight of the KL sparsity term (needs code_activation sigmoid)",
                                    minimum=0.0, maximum=1000.0)
    l1_weight: float = option(0.0, "weight of an L1 penalty on code activations", minimum=0.0, maximum=1000.0)

    def validate(self) -> None:
        super().validate()
        sizes = [self.input_size, *self.hidden, self.latent_dim]
        n = estimate_parameters(sizes) * (1 if self.tied else 2)
        if n > MAX_PARAMETERS:
            raise ConfigError(f"layers {sizes} need {n:,} parameters (limit {MAX_PARAMETERS:,}): use smaller layers")
        if self.sparsity_weight > 0 and self.code_activation != "sigmoid":
            raise ConfigError("the KL sparsity term needs code_activation sigmoid (activations must lie in (0, 1))")


@register("mlp")
class MLPAutoencoder(Autoencoder):
    config_class = MLPConfig
    description = "fully connected AE: any depth, activation, init, dropout, L2, tied weights, sparsity"

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        self.sizes = [config.input_size, *config.hidden, config.latent_dim]
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        if config.tied:
            # Tied decoder: only biases of its own; weights are the encoder's, transposed.
            self.decoder_biases = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a, _ in pairs)
        else:
            self.decoder_layers = nn.ModuleList(nn.Linear(b, a) for a, b in pairs)
        self.act = ACTIVATIONS[config.activation]()
        self.code_act = ACTIVATIONS.get(config.code_activation, nn.Identity)()
        self.dropout = nn.Dropout(config.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        if self.config.init == "default":
            return
        for module in self.modules():
            if isinstance(module, nn.Linear) and not module.weight.is_meta:  # (meta: sized by check_size, no values)
                if self.config.init == "he":
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def _code_act(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.config.code_activation == "none" else self.code_act(h)

    def _encode_layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        h = self.encoder_layers[i](h)
        if i == len(self.encoder_layers) - 1:
            return self._code_act(h)
        return self.dropout(self.act(h))

    def _decode_layer(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i of the decoder maps level i+1 back to level i; level 0 (pixels) stays as logits."""
        if self.config.tied:
            h = F.linear(h, self.encoder_layers[i].weight.t(), self.decoder_biases[i])
        else:
            h = self.decoder_layers[i](h)
        return h if i == 0 else self.dropout(self.act(h))

    def encode(self, x, labels=None):
        h = x.flatten(1)
        for i in range(len(self.encoder_layers)):
            h = self._encode_layer(i, h)
        return h

    def decode_logits(self, z, labels=None):
        h = z
        for i in reversed(range(len(self.encoder_layers))):
            h = self._decode_layer(i, h)
        return h.view(-1, *self.input_shape)

    def regularisers(self, z):
        cfg, terms = self.config, {}
        if cfg.l2_weight > 0:
            weights = [layer.weight for layer in self.encoder_layers]
            if not cfg.tied:
                weights += [layer.weight for layer in self.decoder_layers]
            terms["l2"] = cfg.l2_weight * sum((w ** 2).sum() for w in weights)
        if cfg.sparsity_weight > 0:
            rho, rho_hat = cfg.sparsity_target, z.float().mean(0).clamp(1e-6, 1 - 1e-6)
            kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
            terms["sparsity"] = cfg.sparsity_weight * kl.sum()
        if cfg.l1_weight > 0:
            terms["l1"] = cfg.l1_weight * z.float().abs().sum(1).mean()
        return terms

    # Greedy layer-wise pre-training (Hinton & Salakhutdinov 2006; Bengio et al. 2007): stage k trains a shallow AE
    # from level k to level k+1 on the frozen codes of the stages below it.
    @property
    def num_stages(self) -> int:
        return len(self.encoder_layers)

    def stage_parameters(self, k: int) -> list[nn.Parameter]:
        params = list(self.encoder_layers[k].parameters())
        params += [self.decoder_biases[k]] if self.config.tied else list(self.decoder_layers[k].parameters())
        return params

    def stage_loss(self, k: int, x: torch.Tensor, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Stage k's shallow AE on the frozen stages below: from `x` (the input, corrupted when denoising) it
        reconstructs `target`'s representation at level k (the clean image's, as a stacked denoising AE does;
        `x`'s own without a target)."""
        target = None if target is x else target  # no noise: the input is its own target
        with torch.no_grad():
            h = x.flatten(1)
            for i in range(k):
                h = self._encode_layer(i, h)
            wanted = h
            if target is not None or (k and self.dropout.p and self.training):
                # The target's representation without dropout: a mask of its own would make it a random target.
                dropping, wanted = self.dropout.training, (x if target is None else target).flatten(1)
                self.dropout.eval()
                try:
                    for i in range(k):
                        wanted = self._encode_layer(i, wanted)
                finally:
                    self.dropout.train(dropping)
        code = self._encode_layer(k, h)
        out = self._decode_layer(k, code)
        if k == 0:
            loss = self.reconstruction_loss(out.view(-1, *self.input_shape), wanted.view(-1, *self.input_shape))
        else:
            loss = ((out.float() - wanted.float()) ** 2).sum(1).mean()
        return {f"stage {k + 1} reconstruction": loss, "total": loss}

    def decoder_matrix(self) -> torch.Tensor:
        """Columns span the decoder's output subspace (for a linear AE, compare with PCA's)."""
        if self.config.tied:
            return self.encoder_layers[0].weight.t().detach() if len(self.encoder_layers) == 1 else None
        return self.decoder_layers[0].weight.detach() if len(self.decoder_layers) == 1 else None

    def first_layer_features(self) -> torch.Tensor:
        """Encoder's first-layer weights as images (units, C, H, W): what each hidden unit looks for."""
        return self.encoder_layers[0].weight.detach().view(-1, *self.input_shape)


@dataclass
class LinearConfig(MLPConfig):
    recon_loss: str = option("mse", "reconstruction loss: with MSE the optimum spans PCA's subspace; BCE puts a "
                             "sigmoid on the output (a logistic model, no longer PCA's equivalent)",
                             choices=("mse", "bce"))
    activation: str = option("identity", "no activation: a linear AE", choices=("identity",), hidden=True)
    init: str = option("xavier", "weight initialisation", choices=("xavier", "default"), hidden=True)
    # What would make it something other than the PCA-equivalent model is not offered (Train page, CLI).
    hidden: list[int] = option([], "no hidden layers: a linear AE", hidden=True)
    code_activation: str = option("none", "no code activation: a linear AE", choices=("none",), hidden=True)
    dropout: float = option(0.0, "no hidden layers to drop units from", minimum=0.0, maximum=0.0, hidden=True)
    sparsity_target: float = option(0.05, "no sparsity term", minimum=1e-4, maximum=0.9999, hidden=True)
    sparsity_weight: float = option(0.0, "no sparsity term", minimum=0.0, maximum=0.0, hidden=True)
    l1_weight: float = option(0.0, "no L1 penalty on the code", minimum=0.0, maximum=0.0, hidden=True)

    def validate(self) -> None:
        super().validate()
        if self.hidden or self.code_activation != "none":
            raise ConfigError("a linear AE has no hidden layers and no code activation")


@register("linear")
class LinearAutoencoder(MLPAutoencoder):
    """No activations and MSE: its optimum spans the same subspace as PCA with the same number of components.

    With MSE the decoder output is used as is (no sigmoid), so the model is exactly linear; with BCE the output goes
    through the sigmoid its loss assumes."""

    config_class = LinearConfig
    description = "linear AE (no activations, MSE): learns the PCA subspace"

    def decode(self, z, labels=None):
        out = self.decode_logits(z, labels)
        return out if self.config.recon_loss == "mse" else torch.sigmoid(out)

    def reconstruction_loss(self, logits, target):
        if self.config.recon_loss == "mse":
            return ((logits.float() - target) ** 2).flatten(1).sum(1).mean()
        return super().reconstruction_loss(logits, target)


@dataclass
class SparseConfig(MLPConfig):
    latent_dim: int = option(64, "size of the code", minimum=1, maximum=4096)
    code_activation: str = option("sigmoid", "activation of the code layer", choices=("sigmoid",))
    sparsity_weight: float = option(0.5, "weight of the KL sparsity term", minimum=0.0, maximum=1000.0)


@register("sparse")
class SparseAutoencoder(MLPAutoencoder):
    config_class = SparseConfig
    description = "sparse AE: sigmoid code with a KL sparsity target (and optional L1 on activations)"
