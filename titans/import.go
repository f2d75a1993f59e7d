package titans

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/engramlx/engram/internal/tensorutil"
	"github.com/engramlx/engram/internal/torchlayout"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// pyTorchParam maps one entry of titans-pytorch's NeuralMemory state_dict to a variable of the tp-mode
// LMM: Engram value = (torch value, transposed when transpose) - offset, reshaped to engram.
type pyTorchParam struct {
	torch         string // state_dict name
	scope, name   string // variable: scope (relative to the LMM's) and name
	torchDims     []int
	engramDims    []int
	transpose     bool    // a 2-D [out, in] Linear weight, stored [in, out] here
	offset        float64 // Engram adds this constant to the gate logits, so its bias is the torch bias minus it
	identityIfOff bool    // absent for one head (combine_heads is nn.Identity there): the identity
}

// pyTorchParams lists the mapping for cfg and model width dModel. Engram's tp variables: store_norm/weight,
// retrieve_norm/weight [D]; q, k, v/weight [D, H*Dh]; theta, eta, alpha/weight [D, H] and /bias [H];
// retrieve_gate/weight [D, H] (OutputGate); output/weight [H*Dh, D]; memory/gamma [H, 1, Dh] and
// memory/w{l} [H, in_l, out_l].
func pyTorchParams(cfg Config, dModel int) []pyTorchParam {
	width, h, dh := cfg.Heads*cfg.HeadDim, cfg.Heads, cfg.HeadDim
	params := []pyTorchParam{
		{torch: "store_norm.weight", scope: "store_norm", name: "weight", torchDims: []int{dModel}, engramDims: []int{dModel}},
		{torch: "retrieve_norm.weight", scope: "retrieve_norm", name: "weight", torchDims: []int{dModel}, engramDims: []int{dModel}},
		{torch: "to_queries.weight", scope: "q", name: "weight", torchDims: []int{width, dModel}, engramDims: []int{dModel, width}, transpose: true},
		{torch: "to_keys.weight", scope: "k", name: "weight", torchDims: []int{width, dModel}, engramDims: []int{dModel, width}, transpose: true},
		{torch: "to_values.weight", scope: "v", name: "weight", torchDims: []int{width, dModel}, engramDims: []int{dModel, width}, transpose: true},
	}
	for _, g := range []struct {
		torch, scope string
		offset       float64
	}{{"to_adaptive_step.0", "theta", thetaOffset}, {"to_momentum.0", "eta", etaOffset}, {"to_decay_factor.0", "alpha", alphaOffset}} {
		params = append(params,
			pyTorchParam{torch: g.torch + ".weight", scope: g.scope, name: "weight", torchDims: []int{h, dModel}, engramDims: []int{dModel, h}, transpose: true},
			pyTorchParam{torch: g.torch + ".bias", scope: g.scope, name: "bias", torchDims: []int{h}, engramDims: []int{h}, offset: g.offset})
	}
	if cfg.OutputGate {
		params = append(params, pyTorchParam{torch: "retrieve_gate.0.weight", scope: "retrieve_gate", name: "weight", torchDims: []int{h, dModel}, engramDims: []int{dModel, h}, transpose: true})
	}
	params = append(params,
		pyTorchParam{torch: "combine_heads.weight", scope: "output", name: "weight", torchDims: []int{dModel, width}, engramDims: []int{width, dModel}, transpose: true, identityIfOff: h == 1 && width == dModel},
		pyTorchParam{torch: "memory_model_parameters.0", scope: "memory", name: "gamma", torchDims: []int{h, dh}, engramDims: []int{h, 1, dh}})
	for l, d := range cfg.memoryDims() {
		params = append(params, pyTorchParam{torch: fmt.Sprintf("memory_model_parameters.%d", l+1), scope: "memory", name: fmt.Sprintf("w%d", l),
			torchDims: []int{h, d[0], d[1]}, engramDims: []int{h, d[0], d[1]}})
	}
	return params
}

// ImportPyTorchState sets the variables of a tp-mode Titans memory layer (an LMM applied under scope, as
// model/ and the MAG/MAL/MAC mixers apply it: the scope the LMM's variables live in) from the state_dict of
// lucidrains/titans-pytorch's NeuralMemory with the default options the tp mode reproduces (the package doc
// lists them; for example NeuralMemory(dim=dModel, heads=cfg.Heads, dim_head=cfg.HeadDim,
// chunk_size=cfg.ChunkSize, default_model_kwargs=dict(depth=cfg.MemoryDepth,
// expansion_factor=cfg.MemoryExpansion))). state maps state_dict names to float32 or float64 tensors; the
// variables take the tensors' dtype. Linear weights [out, in] are transposed, the gate biases shifted by
// Engram's gate offsets; the template module's copies ("memory_model.*") are ignored. A missing entry, an
// entry of the wrong shape, or an entry Engram has no use for (an option the tp mode does not reproduce) is
// an error naming it.
func ImportPyTorchState(scope *model.Scope, cfg Config, dModel int, state map[string]*tensors.Tensor) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg = cfg.Normalized(); cfg.Mode != ModeTP {
		return fmt.Errorf("titans: ImportPyTorchState needs mode titans_pytorch, got %q", cfg.Mode)
	}
	params := pyTorchParams(cfg, dModel)
	known := map[string]bool{}
	for _, p := range params {
		known[p.torch] = true
	}
	var unknown []string
	for name := range state {
		if !known[name] && !strings.HasPrefix(name, "memory_model.") {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("titans: state_dict entries %v have no counterpart in the tp mode (a titans-pytorch option it does not reproduce?)", unknown)
	}
	for _, p := range params {
		t, ok := state[p.torch]
		var value *tensors.Tensor
		switch {
		case !ok && p.identityIfOff:
			value = identity(dModel, state)
		case !ok:
			return fmt.Errorf("titans: state_dict has no %q", p.torch)
		default:
			if !slices.Equal(t.Shape().Dimensions, p.torchDims) {
				return fmt.Errorf("titans: state_dict %q has shape %v, want %v for this config", p.torch, t.Shape().Dimensions, p.torchDims)
			}
			if dt := t.DType(); dt != dtypes.Float32 && dt != dtypes.Float64 {
				return fmt.Errorf("titans: state_dict %q is %s, want float32 or float64", p.torch, dt)
			}
			data := tensorutil.Floats(t)
			if p.transpose {
				data = torchlayout.Transpose(data, p.torchDims[0], p.torchDims[1])
			}
			for i := range data {
				data[i] -= p.offset
			}
			value = torchlayout.New(t.DType(), data, p.engramDims...)
		}
		s := scope.At("%s", p.scope)
		if v := s.GetVariable(p.name); v != nil {
			if !v.Shape().Equal(value.Shape()) {
				return fmt.Errorf("titans: variable %s is %s, the state_dict's %q gives %s", v.Path(), v.Shape(), p.torch, value.Shape())
			}
			if err := v.SetValue(value); err != nil {
				return fmt.Errorf("titans: setting %s from %q: %w", v.Path(), p.torch, err)
			}
		} else if _, err := s.CreateVariable(p.name, value); err != nil {
			return fmt.Errorf("titans: creating the variable of %q: %w", p.torch, err)
		}
	}
	return nil
}

// identity is the [n, n] identity in the dtype of the state_dict's tensors.
func identity(n int, state map[string]*tensors.Tensor) *tensors.Tensor {
	dtype := dtypes.Float64
	for _, t := range state {
		dtype = t.DType()
		break
	}
	data := make([]float64, n*n)
	for i := 0; i < n; i++ {
		data[i*n+i] = 1
	}
	return torchlayout.New(dtype, data, n, n)
}
